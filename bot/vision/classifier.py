"""The classifier: a face's crop views in, ranked labels with an "unsure" flag out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bot.vision.bundle import ModelBundle
from bot.vision.embedder import FaceEmbedder
from bot.vision.head import Head

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LabelScore:
    """One label and its score (the scores of one face sum to 1)."""

    label: str
    score: float


@dataclass(frozen=True)
class Prediction:
    """The classifier's answer for one face: labels best first, and whether it is unsure."""

    scores: tuple[LabelScore, ...]
    unsure: bool
    familiarity: float

    @property
    def best(self) -> LabelScore:
        """The highest-scoring label."""
        return self.scores[0]


class FaceClassifier:
    """A bundle's backbone (LiteRT) and head (numpy); not thread-safe (one per worker)."""

    def __init__(self, bundle: ModelBundle, *, num_threads: int = 1) -> None:
        self.bundle = bundle
        self.head = bundle.head
        self.embedder = FaceEmbedder(
            bundle.model_path,
            input_size=bundle.backbone.input_size,
            feature_dim=bundle.backbone.feature_dim,
            num_threads=num_threads,
        )

    def classify(self, views: np.ndarray) -> Prediction:
        """Ranked labels for one face's views (``V×S×S×3`` uint8, as ``crop_views`` makes)."""
        return predict(self.head, self.embedder.embed(views))


def predict(head: Head, embedding: np.ndarray) -> Prediction:
    """The head's ranked labels and unsure flag for one face's embedding."""
    probs, familiarity = head.score(embedding[np.newaxis])
    scores = probs[0].astype(np.float64)
    order = np.argsort(-scores, kind="stable")
    best = int(order[0])
    unsure = head.unsure.is_unsure(float(scores[best]), float(familiarity[0, best]))
    ranked = tuple(LabelScore(head.labels[i], float(scores[i])) for i in order)
    return Prediction(scores=ranked, unsure=unsure, familiarity=float(familiarity[0, best]))
