"""Anime face detection: the LBP cascade, animeface-2009, and a fallback, merged into one list.

Detectors run on a downscaled copy (their cost grows with the pixel count) and
their boxes are mapped back to the coordinates of the picture they were given.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from bot.errors import BotError
from bot.vision.geometry import Box

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Face:
    """A face found in a picture: where it is, which detector found it, how sure it was (0–1)."""

    box: Box
    detector: str
    confidence: float


class FaceDetector(Protocol):
    """Anything that finds faces in an RGB ``H×W×3`` uint8 picture."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in ``image``, boxes in ``image`` coordinates, in no particular order."""
        ...


class DetectorConfigError(BotError):
    """A detector cannot be set up (for instance the cascade file is missing or invalid)."""


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``image`` shrunk so its longer side is at most ``max_side``, and the factor used."""
    height, width = image.shape[:2]
    factor = min(1.0, max_side / max(height, width))
    if factor >= 1.0:
        return image, 1.0
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


class CascadeDetector:
    """The LBP anime-face cascade (nagadomi's ``lbpcascade_animeface.xml``) through OpenCV 4."""

    def __init__(
        self,
        path: Path,
        *,
        name: str = "cascade",
        detect_side: int = 448,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size: int = 24,
    ) -> None:
        if not Path(path).is_file():
            raise DetectorConfigError(f"cascade file not found: {path}")
        self.file_digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
        self._cascade = cv2.CascadeClassifier()
        try:
            loaded = self._cascade.load(str(path))
        except (cv2.error, SystemError) as exc:  # unparsable files raise instead
            raise DetectorConfigError(f"not a cascade OpenCV can load: {path}") from exc
        # Some wrong files load silently as an empty classifier.
        if not loaded or self._cascade.empty():
            raise DetectorConfigError(f"not a cascade OpenCV can load: {path}")
        self.name = name
        self.detect_side = detect_side
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size = min_size

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces found by the cascade; confidence grows with the number of neighbour hits."""
        small, factor = downscale(image, self.detect_side)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        boxes, hits = self._cascade.detectMultiScale2(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        faces = []
        for (x, y, w, h), n in zip(boxes, np.ravel(hits), strict=True):
            confidence = float(min(1.0, n / (3.0 * max(1, self.min_neighbors))))
            box = Box(int(x), int(y), int(w), int(h)).scaled(1.0 / factor)
            faces.append(Face(box, self.name, confidence))
        return faces


class AnimeFaceDetector:
    """The animeface-2009 detector (``animeface`` package, nvxs)."""

    name = "animeface"

    def __init__(self, *, detect_side: int = 288, min_likelihood: float = 0.5) -> None:
        self.detect_side = detect_side
        self.min_likelihood = min_likelihood

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces animeface finds with at least ``min_likelihood``."""
        import animeface  # a C extension; imported on first use only

        small, factor = downscale(image, self.detect_side)
        faces = []
        for found in animeface.detect(Image.fromarray(small)):
            if found.likelihood < self.min_likelihood:
                continue
            pos = found.face.pos
            box = Box(int(pos.x), int(pos.y), int(pos.width), int(pos.height))
            faces.append(Face(box.scaled(1.0 / factor), self.name, float(found.likelihood)))
        return faces


class PortraitFallback:
    """Used when no detector answers: the upper-centre square where a portrait's face usually is."""

    name = "fallback"

    def detect(self, image: np.ndarray) -> list[Face]:
        """One box: a square of 60% of the shorter side, centred, a little above the middle."""
        height, width = image.shape[:2]
        side = max(1, round(0.6 * min(width, height)))
        x = (width - side) // 2
        y = max(0, min(height - side, round(0.38 * height - side / 2)))
        return [Face(Box(x, y, side, side), self.name, 0.0)]


def merge_faces(faces: Sequence[Face], overlap: float = 0.5) -> list[Face]:
    """Fold boxes that cover the same face (overlap of the smaller box ≥ ``overlap``) into one.

    The most confident box of a group stays; its detector name lists every detector that
    agreed (``"cascade+animeface"``) and agreement raises its confidence.
    """
    kept: list[Face] = []
    for face in sorted(faces, key=lambda f: f.confidence, reverse=True):
        for i, other in enumerate(kept):
            if face.box.overlap_of_smaller(other.box) >= overlap:
                names = other.detector.split("+")
                if face.detector not in names:
                    confidence = 1.0 - (1.0 - other.confidence) * (1.0 - face.confidence)
                    detector = "+".join([*names, face.detector])
                    kept[i] = replace(other, detector=detector, confidence=confidence)
                break
        else:
            kept.append(face)
    return kept


def prominence(face: Face, width: int, height: int) -> float:
    """How much a face is the picture's subject: its size, weighted by confidence and centrality."""
    cx, cy = face.box.center
    off_centre = abs(cx / width - 0.5) + abs(cy / height - 0.4)
    return face.box.area * (0.5 + 0.5 * face.confidence) * (1.0 - 0.5 * min(1.0, off_centre))


class FaceFinder:
    """Runs the primary detectors, then the backups if none answered, then the fallback.

    ``find`` returns merged faces ordered by prominence: the first is the main subject.
    """

    def __init__(
        self,
        primary: Sequence[FaceDetector],
        backups: Sequence[FaceDetector] = (),
        fallback: FaceDetector | None = None,
    ) -> None:
        if not primary and not backups and fallback is None:
            raise DetectorConfigError("no face detector configured")
        self.primary = tuple(primary)
        self.backups = tuple(backups)
        self.fallback = fallback

    def describe(self) -> str:
        """Every detector and its settings: what the trainer's embedding cache is keyed on."""
        stages = [list(self.primary), list(self.backups), [self.fallback] if self.fallback else []]

        def settings(detector: FaceDetector) -> str:
            public = {k: v for k, v in vars(detector).items() if not k.startswith("_")}
            return f"{detector.name}{sorted(public.items())}"

        return " | ".join(",".join(settings(d) for d in stage) for stage in stages)

    def find(self, image: np.ndarray) -> list[Face]:
        """Every face in ``image`` (never empty when a fallback is set), most prominent first."""
        height, width = image.shape[:2]
        found: list[Face] = []
        for stage in (self.primary, self.backups):
            for detector in stage:
                found.extend(detector.detect(image))
            if found:
                break
        if not found and self.fallback is not None:
            found = self.fallback.detect(image)
        merged = merge_faces(found)
        return sorted(merged, key=lambda f: prominence(f, width, height), reverse=True)


def default_face_finder(cascade_path: Path | None = None) -> FaceFinder:
    """The detectors the bot and the trainer use.

    With the cascade configured it is the fast primary detector and animeface backs it up
    when it finds nothing; without it animeface is primary. A relaxed cascade and the
    portrait fallback come last, so every picture yields at least one face to classify.
    """
    animeface = AnimeFaceDetector()
    if cascade_path is None:
        return FaceFinder([animeface], [], PortraitFallback())
    strict = CascadeDetector(cascade_path)
    relaxed = CascadeDetector(cascade_path, name="cascade-relaxed", min_neighbors=2)
    return FaceFinder([strict], [animeface, relaxed], PortraitFallback())
