"""Labelled pictures on disk (one folder per character) and the faces found in them."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.errors import ImageError, InvalidNameError, TrainingError
from bot.names import normalise_name
from bot.vision.crop import CropSettings, crop_views
from bot.vision.decode import decode_image
from bot.vision.faces import FaceFinder

log = logging.getLogger(__name__)

PICTURE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"})


def label_from_folder(name: str) -> str:
    """The label a folder name stands for: ``Nishikino_Maki`` → ``nishikino maki`` (empty for a
    folder whose name is no usable character name)."""
    try:
        return normalise_name(name)
    except InvalidNameError:
        return ""


@dataclass(frozen=True)
class LabelledPicture:
    """A picture file and the label of the folder it is in."""

    path: Path
    label: str


@dataclass(frozen=True)
class PictureFaces:
    """The faces found in one picture: their views (``faces×V×S×S×3``) and detectors."""

    picture: LabelledPicture
    digest: str
    views: np.ndarray
    detectors: tuple[str, ...]


def scan_folder(root: Path) -> list[LabelledPicture]:
    """Every picture under ``root/<label>/`` (sorted); other files and folders are ignored."""
    if not root.is_dir():
        raise TrainingError(f"no training folder at {root}")
    pictures = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        label = label_from_folder(folder.name)
        if not label:
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in PICTURE_SUFFIXES:
                pictures.append(LabelledPicture(path, label))
    return pictures


def file_digest(data: bytes) -> str:
    """SHA-256 of a picture's bytes: its identity in the embedding cache."""
    return hashlib.sha256(data).hexdigest()


def find_faces(
    data: bytes, finder: FaceFinder, crop: CropSettings
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Decode ``data`` and return the views of each face (most prominent first) and detectors.

    This is the same code path the bot uses at serving time, so training and serving crops
    are made identically.
    """
    decoded = decode_image(data)
    faces = finder.find(decoded.pixels)
    if not faces:
        return np.zeros((0, len(crop.margins), crop.size, crop.size, 3), np.uint8), ()
    views = np.stack([crop_views(decoded.pixels, face.box, crop) for face in faces])
    return views, tuple(face.detector for face in faces)


def read_picture(picture: LabelledPicture) -> bytes | None:
    """The picture's bytes, or None (logged) when it cannot be read."""
    try:
        return picture.path.read_bytes()
    except OSError as exc:
        log.warning("skipping %s: %s", picture.path, exc)
        return None


def describe_skip(picture: LabelledPicture, exc: ImageError) -> str:
    """A line for the training report about a picture that was left out."""
    return f"{picture.path.parent.name}/{picture.path.name}: {exc.user_message}"
