"""Face embeddings, and an on-disk cache of each picture's faces keyed by its hash.

A face's features are ``2×F``: the face as seen and mirrored, each the concatenation of
the unit-length pooled backbone features of every crop view, scaled to unit length.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bot.vision.crop import CropSettings
from bot.vision.embedder import combine_views
from trainer import progress

log = logging.getLogger(__name__)


@dataclass
class Embedder:
    """Turns face views into features with a Keras backbone (raw ``[0, 255]`` RGB in)."""

    backbone: Any
    name: str
    crop: CropSettings
    batch_size: int = 32
    progress: bool = False

    def embed(self, views: np.ndarray) -> np.ndarray:
        """``N×V×S×S×3`` uint8 views → ``N×2×F`` features (as seen, mirrored)."""
        n, v = views.shape[:2]
        if n == 0:
            return np.zeros((0, 2, 0), np.float32)
        flat = views.reshape(n * v, *views.shape[2:])
        both = np.concatenate([flat, flat[:, :, ::-1]])
        starts = range(0, len(both), self.batch_size)
        batches = tqdm(starts, "embedding faces", unit="batch", disable=not self.progress)
        pooled = np.concatenate(
            [
                np.asarray(
                    self.backbone.predict_on_batch(both[i : i + self.batch_size].astype(np.float32))
                )
                for i in progress.steps("embedding", batches, len(starts))
            ]
        )
        pooled = pooled.reshape(2, n, v, -1).transpose(1, 0, 2, 3)
        return combine_views(pooled).astype(np.float32)

    def fingerprint(self, finder_description: str) -> str:
        """Identifies everything that changes a cached embedding."""
        payload = json.dumps(
            {"backbone": self.name, "crop": self.crop.to_dict(), "finder": finder_description},
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def fingerprint(encoder: str, crop: CropSettings, finder_description: str) -> str:
    """Identifies everything that changes what the cache keeps for a picture: the encoder
    (backbone and where it is cut, or a ``.tflite``'s hash), the crop and the detectors."""
    payload = json.dumps(
        {"encoder": encoder, "crop": crop.to_dict(), "finder": finder_description},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CachedFaces:
    """What the cache keeps for one picture: every face's encoded views (``features``, as
    the encoder that filled the cache makes them), detectors and boxes (``K×4``: x, y, w, h
    in the original picture's pixels)."""

    features: np.ndarray
    detectors: tuple[str, ...]
    boxes: np.ndarray


class EmbeddingCache:
    """One ``.npz`` per picture digest under ``root/<fingerprint>/``; writes are atomic."""

    def __init__(self, root: Path | None, fingerprint: str) -> None:
        self.dir = root / fingerprint if root is not None else None

    def get(self, digest: str) -> CachedFaces | None:
        """The cached faces of a picture, or None."""
        if self.dir is None:
            return None
        path = self.dir / f"{digest}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                detectors = tuple(str(d) for d in data["detectors"])
                return CachedFaces(data["features"], detectors, data["boxes"])
        except (OSError, KeyError, ValueError):
            return None

    def put(self, digest: str, faces: CachedFaces) -> None:
        """Store a picture's faces (a failed write only costs recomputation later)."""
        self._write(
            f"{digest}.npz",
            features=faces.features,
            detectors=np.array(faces.detectors, dtype=str),
            boxes=faces.boxes,
        )

    def get_extra(self, digest: str, key: str) -> np.ndarray | None:
        """Something else encoded from a picture (e.g. a face's reframed copies), or None."""
        if self.dir is None:
            return None
        try:
            with np.load(self.dir / f"{digest}.{key}.npz", allow_pickle=False) as data:
                return np.asarray(data["encoded"])
        except (OSError, KeyError, ValueError):
            return None

    def put_extra(self, digest: str, key: str, encoded: np.ndarray) -> None:
        """Store what :meth:`get_extra` reads."""
        self._write(f"{digest}.{key}.npz", encoded=encoded)

    def _write(self, name: str, **arrays: np.ndarray) -> None:
        if self.dir is None:
            return
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)  # type: ignore[arg-type]
            os.replace(tmp, self.dir / name)
        except OSError as exc:
            log.warning("could not write the embedding cache: %s", exc)
