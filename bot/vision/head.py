"""The head: a face's embedding in, ranked labels and an "unsure" flag out.

A head is small (a linear classifier and a gallery of training embeddings) and runs in
numpy, so many heads can share one backbone: the operator's base model and each server's
own model differ only in their heads. The trainer validates with this same code, so what
ships is what was validated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.errors import BundleError

HEAD_FORMAT = 3
"""The layout of :meth:`Head.to_bytes`: an ``.npz`` of ``meta`` (JSON), ``weights``,
``bias``, ``gallery``, ``gallery_labels`` and (format 2) ``gallery_dims``. Every array
carries its own dtype, so a gallery written as float32 (older heads) or float16 reads the
same way; a change of arrays or meta is a new format. Format 1 heads have no
``gallery_dims``: their gallery holds whole embeddings. Format 3 adds
``typical_familiarity`` to the meta; older heads read without it (raw familiarity)."""
READABLE_FORMATS = frozenset({1, 2, 3})
GALLERY_DTYPE = np.float16
"""How the gallery is stored: it is most of a head (a row of unit length per training face,
7,680 numbers each for three views), and half precision changes scores by less than 1e-3.
Scoring runs in float32."""


def l2_normalise(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """``x`` scaled to unit length along ``axis``."""
    return x / (np.linalg.norm(x, axis=axis, keepdims=True) + 1e-8)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class UnsureRule:
    """When an answer is "unsure": ``familiarity + prob_weight * score`` of the best label
    below ``threshold`` (familiarity is the face's similarity to that label's training faces).
    """

    threshold: float
    prob_weight: float = 0.5

    def confidence(self, score: float | np.ndarray, familiarity: float | np.ndarray) -> Any:
        """The number compared with the threshold."""
        return familiarity + self.prob_weight * score

    def is_unsure(self, score: float, familiarity: float) -> bool:
        """True when the best label is too little like what the model was taught."""
        return bool(self.confidence(score, familiarity) < self.threshold)


class SharedGallery:
    """A head's gallery whose rows live in arrays other heads use too (see
    :class:`bot.model_store.GalleryRows`): every server's head holds the base's faces, and
    two hundred servers' copies of them were most of a bot's memory.

    ``parts`` are ``(rows, index)`` pairs: ``rows`` a float32 ``K×D`` array (shared, never
    written), ``index`` which of its rows belong to this gallery. The gallery is the parts'
    chosen rows one after the other; it behaves as that ``M×D`` array where a head needs one
    (``np.asarray`` builds it), and :meth:`similarities` never builds it.
    """

    def __init__(self, parts: tuple[tuple[np.ndarray, np.ndarray], ...]) -> None:
        if not parts:
            raise ValueError("a shared gallery needs at least one part")
        dims = {rows.shape[1] for rows, _ in parts}
        if len(dims) != 1 or any(rows.ndim != 2 for rows, _ in parts):
            raise ValueError("the parts of a shared gallery must be matrices of one width")
        self.parts = parts
        self.shape = (sum(len(index) for _, index in parts), dims.pop())
        self.ndim = 2
        self.dtype = np.dtype(np.float32)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        rows = np.concatenate([rows[index] for rows, index in self.parts])
        return rows if dtype is None else rows.astype(dtype)

    def astype(self, dtype: Any) -> np.ndarray:
        """The whole gallery as one array of ``dtype``."""
        return np.asarray(self, dtype)

    def similarities(self, unit: np.ndarray) -> np.ndarray:
        """``unit @ gallery.T`` for unit-length ``N×D`` rows, part by part."""
        return np.concatenate([(unit @ rows.T)[:, index] for rows, index in self.parts], axis=1)


def similarities(gallery: np.ndarray | SharedGallery, unit: np.ndarray) -> np.ndarray:
    """Cosine similarities (``N×M``) of unit-length rows to a gallery's rows."""
    if isinstance(gallery, SharedGallery):
        return gallery.similarities(unit)
    # asarray: no copy of the (large) gallery when it is float32 already, as read.
    return unit @ np.asarray(gallery, np.float32).T


@dataclass(frozen=True, eq=False)
class Head:
    """Weights of a trained head over ``D``-dimensional face embeddings.

    ``weights`` (``D×C``) and ``bias`` (``C``) form the softmax classifier; ``gallery`` (unit
    rows, ``M×G``) with ``gallery_labels`` (label ids) are the training faces "familiarity"
    looks at: the mean cosine similarity to a label's ``top_k`` nearest ones, over the
    embedding's dimensions ``gallery_dims`` (``G`` of them; None: all ``D``), less the
    label's ``typical_familiarity`` (``C``; None: 0 for every label), how familiar the
    label's own training faces are with each other. A character whose pictures differ more
    among themselves, as one the backbone was not fine-tuned on does, is then not flagged
    "unsure" for that alone.
    """

    labels: tuple[str, ...]
    weights: np.ndarray
    bias: np.ndarray
    gallery: np.ndarray | SharedGallery
    gallery_labels: np.ndarray
    top_k: int
    unsure: UnsureRule
    gallery_dims: np.ndarray | None = None
    typical_familiarity: np.ndarray | None = None

    def __post_init__(self) -> None:
        dim, count = self.weights.shape
        if count != len(self.labels) or self.bias.shape != (count,):
            raise BundleError(
                f"the head has {len(self.labels)} labels but weights for {count} "
                f"and a bias of shape {self.bias.shape}"
            )
        width = dim
        if self.gallery_dims is not None:
            dims = self.gallery_dims
            if dims.ndim != 1 or not len(dims) or dims.min() < 0 or dims.max() >= dim:
                raise BundleError(f"the head's gallery dimensions are not dimensions of {dim}")
            width = len(dims)
        if self.gallery.ndim != 2 or self.gallery.shape[1] != width:
            raise BundleError(
                f"the head's gallery has shape {self.gallery.shape}, not (M, {width})"
            )
        if self.gallery_labels.shape != (self.gallery.shape[0],):
            raise BundleError("the head's gallery labels do not match its gallery")
        if (
            len(self.gallery_labels)
            and not 0 <= self.gallery_labels.min() <= (self.gallery_labels.max()) < count
        ):
            raise BundleError("the head's gallery names a label it does not have")
        if self.top_k < 1:
            raise BundleError("the head's top_k must be at least 1")
        typical = self.typical_familiarity
        if typical is not None and (typical.shape != (count,) or not np.isfinite(typical).all()):
            raise BundleError(f"the head's typical familiarity is not {count} finite numbers")

    @property
    def dim(self) -> int:
        """The embedding length the head expects."""
        return int(self.weights.shape[0])

    @property
    def label_count(self) -> int:
        """How many labels the head tells apart."""
        return len(self.labels)

    def score(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Softmax scores and per-label familiarity (``M×C`` each) for ``M×D`` embeddings.

        Familiarity is relative to each label's typical familiarity when the head has one. A
        label with no gallery faces gets -1, the lowest cosine similarity.
        """
        features = np.atleast_2d(np.asarray(features, np.float32))
        probs = softmax(features @ self.weights + self.bias)
        compared = features if self.gallery_dims is None else features[:, self.gallery_dims]
        sims = similarities(self.gallery, l2_normalise(compared))
        familiarity = np.full((len(features), self.label_count), -1.0, np.float32)
        for label in np.unique(self.gallery_labels):
            block = sims[:, self.gallery_labels == label]
            k = min(self.top_k, block.shape[1])
            nearest = np.partition(block, block.shape[1] - k, axis=1)[:, -k:]
            familiarity[:, label] = nearest.mean(axis=1)
            if self.typical_familiarity is not None:
                familiarity[:, label] -= self.typical_familiarity[label]
        return probs, familiarity

    def to_bytes(self) -> bytes:
        """The head as an ``.npz`` (no pickles; see :data:`HEAD_FORMAT`), the gallery in
        :data:`GALLERY_DTYPE`."""
        buffer = io.BytesIO()
        meta = {
            "format": HEAD_FORMAT,
            "labels": list(self.labels),
            "top_k": self.top_k,
            "unsure": {"threshold": self.unsure.threshold, "prob_weight": self.unsure.prob_weight},
        }
        if self.typical_familiarity is not None:
            meta["typical_familiarity"] = [float(v) for v in self.typical_familiarity]
        np.savez(
            buffer,
            meta=np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8),
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float32),
            gallery=self.gallery.astype(GALLERY_DTYPE),
            gallery_labels=self.gallery_labels.astype(np.int32),
            gallery_dims=(
                np.arange(self.dim) if self.gallery_dims is None else self.gallery_dims
            ).astype(np.int32),
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Head:
        """Read what :meth:`to_bytes` writes or wrote (any of :data:`READABLE_FORMATS`, a
        float16 or float32 gallery); raise :class:`BundleError` for anything else. The
        gallery is float32 in memory."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                meta = json.loads(arrays["meta"].tobytes().decode("utf-8"))
                if meta.get("format") not in READABLE_FORMATS:
                    readable = ", ".join(str(f) for f in sorted(READABLE_FORMATS))
                    raise BundleError(
                        f"the head has format {meta.get('format')!r}; this bot reads {readable}"
                    )
                rule = meta["unsure"]
                dims = arrays["gallery_dims"].astype(np.int64) if meta["format"] >= 2 else None
                if dims is not None and np.array_equal(dims, np.arange(arrays["weights"].shape[0])):
                    dims = None
                typical = meta.get("typical_familiarity") if meta["format"] >= 3 else None
                return cls(
                    labels=tuple(str(label) for label in meta["labels"]),
                    weights=arrays["weights"].astype(np.float32),
                    bias=arrays["bias"].astype(np.float32),
                    gallery=arrays["gallery"].astype(np.float32),
                    gallery_labels=arrays["gallery_labels"].astype(np.int64),
                    top_k=int(meta["top_k"]),
                    unsure=UnsureRule(float(rule["threshold"]), float(rule["prob_weight"])),
                    gallery_dims=dims,
                    typical_familiarity=(
                        None if typical is None else np.array(typical, np.float32)
                    ),
                )
        except BundleError:
            raise
        except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise BundleError(f"the head cannot be read: {exc}") from exc

    def with_unsure(self, rule: UnsureRule) -> Head:
        """The same head with another unsure rule."""
        return dataclasses.replace(self, unsure=rule)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
