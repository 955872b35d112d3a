"""Model bundles: ``model.tflite`` + ``head.npz`` + ``labels.txt`` + ``model.json``.

``model.tflite`` is the backbone (one crop view in, its pooled features out); ``head.npz``
is the head that names faces from their embeddings (:mod:`bot.vision.head`). Keeping them
apart lets many heads (the base model's, each server's) share one backbone.

A bundle is written into a temporary sibling directory and renamed into place, so a
reader never sees half a bundle; a bundle whose parts disagree is refused.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BundleError
from bot.vision.crop import CropSettings
from bot.vision.head import Head, UnsureRule, sha256_hex

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MODEL_FILE = "model.tflite"
HEAD_FILE = "head.npz"
LABELS_FILE = "labels.txt"
INFO_FILE = "model.json"


PRECISIONS = ("int8", "float16", "float32")
"""How a backbone ``.tflite`` computes: ``int8`` (weights and activations, calibrated on
real face views when exported; float in and out), ``float16`` (weights stored as float16,
computed in float32) or ``float32``. On these two-core machines (LiteRT's XNNPACK, one
thread) int8 ran a fine-tuned backbone's three 160 px views in 11.6 ms against 17.3 ms."""


def familiarity_dims(feature_dim: int, views: int, familiar: int | None) -> np.ndarray | None:
    """The dimensions of an embedding of ``views`` views of ``feature_dim`` features each
    that are the first ``familiar`` features of a view (None when that is all of them)."""
    if familiar is None or familiar >= feature_dim:
        return None
    return (np.arange(views)[:, None] * feature_dim + np.arange(familiar)).reshape(-1)


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone ``.tflite`` is: its input size, features per view and crop views.

    ``sha256`` identifies the file: heads trained on its embeddings work with it only.
    """

    name: str
    sha256: str
    input_size: int
    feature_dim: int
    crop: CropSettings
    familiar_features: int | None = None
    """How many leading features of each view were fine-tuned (None: none or all). A
    fine-tuned backbone gives its tuned features first, then the frozen ones. A head fitted
    with the fine-tuning, on the characters it was tuned on, compares only those for
    "familiarity": that told untaught characters apart far better on the dev sets (with the
    threshold at 16% of right answers flagged: 68% of holoen_faces' untaught faces flagged,
    against 62% on the whole embedding and 60% on the frozen features). Heads refitted later
    on the same backbone (a server's ``/retrain``) compare whole embeddings: their own
    characters were never tuned on."""

    @property
    def embedding_dim(self) -> int:
        """The length of a face's embedding (every view's features concatenated)."""
        return self.feature_dim * len(self.crop.margins)

    def familiarity_dims(self) -> np.ndarray | None:
        """The embedding's dimensions familiarity compares (None: all of them)."""
        return familiarity_dims(self.feature_dim, len(self.crop.margins), self.familiar_features)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for ``model.json``."""
        values: dict[str, Any] = {
            "name": self.name,
            "sha256": self.sha256,
            "input_size": self.input_size,
            "feature_dim": self.feature_dim,
            "crop": self.crop.to_dict(),
        }
        if self.familiar_features is not None:
            values["familiar_features"] = self.familiar_features
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BackboneInfo:
        """Read back what ``to_dict`` wrote."""
        crop = CropSettings.from_dict(values["crop"])
        if int(values["input_size"]) != crop.size:
            raise ValueError("the backbone's input size differs from its crop size")
        return cls(
            name=str(values["name"]),
            sha256=str(values["sha256"]),
            input_size=int(values["input_size"]),
            feature_dim=int(values["feature_dim"]),
            crop=crop,
            familiar_features=(
                int(values["familiar_features"]) if values.get("familiar_features") else None
            ),
        )


@dataclass(frozen=True)
class ModelBundle:
    """A loaded, checked bundle: where it is, its backbone, its head and its metadata."""

    path: Path
    info: dict[str, Any]
    backbone: BackboneInfo
    head: Head

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels in the head's output order."""
        return self.head.labels

    @property
    def crop(self) -> CropSettings:
        """How faces are cropped for this bundle's backbone."""
        return self.backbone.crop

    @property
    def unsure(self) -> UnsureRule:
        """When an answer is unsure."""
        return self.head.unsure

    @property
    def model_path(self) -> Path:
        """The backbone's ``.tflite`` file."""
        return self.path / MODEL_FILE

    @property
    def version(self) -> str:
        """The bundle's version string (its creation stamp and content hash)."""
        return str(self.info.get("version", "unknown"))


def read_labels(path: Path) -> tuple[str, ...]:
    """Labels one a line, blank lines ignored."""
    return tuple(line.strip() for line in path.read_text("utf-8").splitlines() if line.strip())


def load_bundle(path: Path | str) -> ModelBundle:
    """Read and check the bundle in ``path``; raise :class:`BundleError` saying what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise BundleError(f"no model bundle at {path}: train one with `python -m trainer train`")
    parts = (MODEL_FILE, HEAD_FILE, LABELS_FILE, INFO_FILE)
    missing = [name for name in parts if not (path / name).is_file()]
    if INFO_FILE not in missing:
        info = _read_info(path)
        if info.get("format_version") != FORMAT_VERSION:
            raise BundleError(
                f"the model bundle at {path} has format {info.get('format_version')!r}; "
                f"this bot reads format {FORMAT_VERSION} (train it again)"
            )
    if missing:
        raise BundleError(f"the model bundle at {path} is incomplete: {', '.join(missing)} missing")
    try:
        labels = read_labels(path / LABELS_FILE)
        head_bytes = (path / HEAD_FILE).read_bytes()
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"the model bundle at {path} cannot be read: {exc}") from exc
    if len(labels) < 2:
        raise BundleError(f"the model bundle at {path} names {len(labels)} label(s); 2 are needed")
    if len(set(labels)) != len(labels):
        raise BundleError(f"{path / LABELS_FILE} lists a label twice")
    if info.get("label_count") != len(labels) or list(info.get("labels", labels)) != list(labels):
        raise BundleError(
            f"the model bundle at {path} disagrees with itself: labels.txt has {len(labels)} "
            f"labels, model.json says {info.get('label_count')}"
        )
    expected_hash = info.get("tflite_sha256")
    if expected_hash and file_sha256(path / MODEL_FILE) != expected_hash:
        raise BundleError(f"{path / MODEL_FILE} does not match the checksum in model.json")
    if info.get("head_sha256") and sha256_hex(head_bytes) != info["head_sha256"]:
        raise BundleError(f"{path / HEAD_FILE} does not match the checksum in model.json")
    try:
        backbone = BackboneInfo.from_dict(info["backbone"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path / INFO_FILE} lacks a valid backbone description: {exc}") from exc
    head = Head.from_bytes(head_bytes)
    if head.labels != labels:
        raise BundleError(
            f"the model bundle at {path} disagrees with itself: labels.txt and "
            f"{HEAD_FILE} list different labels"
        )
    if head.dim != backbone.embedding_dim:
        raise BundleError(
            f"the model bundle at {path} disagrees with itself: the head takes embeddings of "
            f"{head.dim} numbers, the backbone gives {backbone.embedding_dim}"
        )
    return ModelBundle(path=path, info=info, backbone=backbone, head=head)


def _read_info(path: Path) -> dict[str, Any]:
    try:
        info = json.loads((path / INFO_FILE).read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"the model bundle at {path} cannot be read: {exc}") from exc
    if not isinstance(info, dict):
        raise BundleError(f"{path / INFO_FILE} is not a JSON object")
    return info


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_bundle(
    dest: Path | str,
    model: bytes,
    head: Head,
    backbone: BackboneInfo,
    info: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a complete bundle to ``dest`` atomically (temporary sibling, then rename).

    ``info`` is completed with the format version, the labels, the backbone's description,
    the unsure rule and both checksums. An existing bundle at ``dest`` is replaced only once
    the new one is complete.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    head_bytes = head.to_bytes()
    labels = head.labels
    info = {
        **info,
        "format_version": FORMAT_VERSION,
        "label_count": len(labels),
        "labels": list(labels),
        "backbone": backbone.to_dict(),
        "crop": backbone.crop.to_dict(),
        "unsure": {
            **info.get("unsure", {}),
            "threshold": head.unsure.threshold,
            "prob_weight": head.unsure.prob_weight,
        },
        "tflite_sha256": sha256_hex(model),
        "head_sha256": sha256_hex(head_bytes),
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old: Path | None = None
    try:
        _write_synced(staging / MODEL_FILE, model)
        _write_synced(staging / HEAD_FILE, head_bytes)
        _write_synced(staging / LABELS_FILE, ("\n".join(labels) + "\n").encode("utf-8"))
        for name, data in (extra_files or {}).items():
            _write_synced(staging / name, data)
        _write_synced(staging / INFO_FILE, json.dumps(info, indent=2).encode("utf-8"))
        load_bundle(staging)  # never put a bundle in place that would be refused
        if dest.exists():
            old = dest.parent / f".{dest.name}.{os.getpid()}.old"
            os.replace(dest, old)
        os.replace(staging, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not dest.exists():
            os.rename(old, dest)  # put the previous bundle back (dest is known not to exist)
        raise
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    log.info("wrote model bundle %s (%d labels)", dest, len(labels))
    return dest
