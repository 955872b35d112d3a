"""Model bundles: ``model.tflite`` + ``labels.txt`` + ``model.json``, read and written whole.

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

from bot.errors import BundleError
from bot.vision.crop import CropSettings

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MODEL_FILE = "model.tflite"
LABELS_FILE = "labels.txt"
INFO_FILE = "model.json"


@dataclass(frozen=True)
class UnsureRule:
    """When an answer is "unsure": ``familiarity + prob_weight * score`` of the best label
    below ``threshold`` (familiarity is the face's similarity to that label's training faces).
    """

    threshold: float
    prob_weight: float = 0.5

    def is_unsure(self, score: float, familiarity: float) -> bool:
        """True when the best label is too little like what the model was taught."""
        return familiarity + self.prob_weight * score < self.threshold


@dataclass(frozen=True)
class ModelBundle:
    """A loaded, checked bundle: where it is, its labels in output order, and its metadata."""

    path: Path
    labels: tuple[str, ...]
    info: dict[str, Any]
    crop: CropSettings
    unsure: UnsureRule

    @property
    def model_path(self) -> Path:
        """The ``.tflite`` file."""
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
    missing = [name for name in (MODEL_FILE, LABELS_FILE, INFO_FILE) if not (path / name).is_file()]
    if missing:
        raise BundleError(f"the model bundle at {path} is incomplete: {', '.join(missing)} missing")
    try:
        info = json.loads((path / INFO_FILE).read_text("utf-8"))
        labels = read_labels(path / LABELS_FILE)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"the model bundle at {path} cannot be read: {exc}") from exc
    if not isinstance(info, dict):
        raise BundleError(f"{path / INFO_FILE} is not a JSON object")
    if info.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"the model bundle at {path} has format {info.get('format_version')!r}; "
            f"this bot reads format {FORMAT_VERSION}"
        )
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
    try:
        crop = CropSettings.from_dict(info["crop"])
        rule = info["unsure"]
        unsure = UnsureRule(float(rule["threshold"]), float(rule.get("prob_weight", 0.5)))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path / INFO_FILE} lacks valid crop or unsure settings: {exc}") from exc
    return ModelBundle(path=path, labels=labels, info=info, crop=crop, unsure=unsure)


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
    labels: list[str] | tuple[str, ...],
    info: dict[str, Any],
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Write a complete bundle to ``dest`` atomically (temporary sibling, then rename).

    ``info`` is completed with the format version, the labels and the model's checksum.
    An existing bundle at ``dest`` is replaced only once the new one is complete.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    info = {
        **info,
        "format_version": FORMAT_VERSION,
        "label_count": len(labels),
        "labels": list(labels),
        "tflite_sha256": hashlib.sha256(model).hexdigest(),
    }
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    old: Path | None = None
    try:
        _write_synced(staging / MODEL_FILE, model)
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
