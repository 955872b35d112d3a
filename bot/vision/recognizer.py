"""Picture bytes in, named faces out: decode, detect, crop, classify."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.vision.bundle import ModelBundle
from bot.vision.classifier import FaceClassifier, Prediction, predict
from bot.vision.crop import CropSettings, crop_views
from bot.vision.decode import DEFAULT_LIMITS, DecodedImage, DecodeLimits, decode_image
from bot.vision.embedder import FaceEmbedder
from bot.vision.faces import FaceFinder, default_face_finder
from bot.vision.geometry import Box
from bot.vision.head import Head

UNDETECTED = frozenset({"none"})
"""Detector names of a box that stands in for a face no detector found."""


@dataclass(frozen=True)
class FaceResult:
    """One face of a picture: its box in original-picture pixels, the detector, the answer.

    ``views`` holds the crops that were classified (kept so corrections can become
    training data exactly as the model saw them).
    """

    box: Box
    detector: str
    prediction: Prediction
    views: np.ndarray

    @property
    def is_detected(self) -> bool:
        """True when a face detector found this face; False for the stand-in box used when
        none did (the whole picture, detector ``"none"``), which is never stored or corrected."""
        return self.detector not in UNDETECTED

    def to_json(self) -> dict[str, object]:
        """The ``faces`` item of ``classify --json``."""
        return {
            "box": self.box.as_list(),
            "detector": self.detector,
            "scores": [{"label": s.label, "score": s.score} for s in self.prediction.scores],
            "unsure": self.prediction.unsure,
        }


@dataclass(frozen=True)
class Recognition:
    """Everything found in one picture, the main subject first."""

    faces: tuple[FaceResult, ...]
    width: int
    height: int
    seconds: float
    model_version: str

    @property
    def detected_faces(self) -> tuple[FaceResult, ...]:
        """The faces a detector found, main subject first (no stand-in box)."""
        return tuple(face for face in self.faces if face.is_detected)


class Recognizer:
    """Holds one finder and one classifier; not thread-safe (use one per worker thread)."""

    def __init__(
        self,
        bundle: ModelBundle,
        finder: FaceFinder,
        limits: DecodeLimits = DEFAULT_LIMITS,
        *,
        max_faces: int = 10,
    ) -> None:
        self.bundle = bundle
        self.finder = finder
        self.classifier = FaceClassifier(bundle)
        self.limits = limits
        self.max_faces = max_faces

    @classmethod
    def from_paths(cls, bundle: ModelBundle, cascade_path: Path | None = None) -> Recognizer:
        """A recognizer with the default detectors."""
        return cls(bundle, default_face_finder(cascade_path))

    def recognize_bytes(self, data: bytes) -> Recognition:
        """Decode ``data`` (raising an ``ImageError`` for bad input) and recognise its faces."""
        started = time.perf_counter()
        decoded = decode_image(data, self.limits)
        return self.recognize(decoded, started)

    def recognize(self, decoded: DecodedImage, started: float | None = None) -> Recognition:
        """Recognise the faces of an already decoded picture."""
        model = HeadOnBackbone(
            self.bundle.version, self.classifier.embedder, self.bundle.head, self.bundle.crop
        )
        return recognize_faces(decoded, self.finder, model, started, max_faces=self.max_faces)


@dataclass(frozen=True)
class HeadOnBackbone:
    """A model at serving time: a head over the embeddings of a running backbone (many
    heads may share one ``embedder``; the embedder is not thread-safe)."""

    version: str
    embedder: FaceEmbedder
    head: Head
    crop: CropSettings


def recognize_faces(
    decoded: DecodedImage,
    finder: FaceFinder,
    model: HeadOnBackbone,
    started: float | None = None,
    *,
    max_faces: int = 10,
) -> Recognition:
    """Find, crop, embed and name the faces of a decoded picture."""
    started = time.perf_counter() if started is None else started
    image = decoded.pixels
    width, height = decoded.original_size
    results = []
    for face in finder.find(image)[:max_faces]:
        views = crop_views(image, face.box, model.crop)
        prediction = predict(model.head, model.embedder.embed(views))
        box = face.box.scaled(1.0 / decoded.scale).clipped(width, height)
        results.append(FaceResult(box, face.detector, prediction, views))
    elapsed = time.perf_counter() - started
    return Recognition(tuple(results), width, height, elapsed, model.version)
