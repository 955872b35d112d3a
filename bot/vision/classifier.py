"""The LiteRT classifier: face views in, ranked labels with an "unsure" flag out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from bot.errors import BundleError
from bot.vision.bundle import ModelBundle

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
    """Runs a bundle's ``model.tflite`` with LiteRT (no TensorFlow needed)."""

    def __init__(self, bundle: ModelBundle, *, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.bundle = bundle
        try:
            self._interpreter = Interpreter(
                model_path=str(bundle.model_path), num_threads=num_threads
            )
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise BundleError(f"{bundle.model_path} is not a model LiteRT can run: {exc}") from exc
        inputs = self._interpreter.get_input_details()
        outputs = self._interpreter.get_output_details()
        views, size = len(bundle.crop.margins), bundle.crop.size
        if len(inputs) != 1 or tuple(inputs[0]["shape"]) != (1, views, size, size, 3):
            raise BundleError(
                f"{bundle.model_path} takes input {[tuple(d['shape']) for d in inputs]}, "
                f"but model.json describes (1, {views}, {size}, {size}, 3)"
            )
        labels = len(bundle.labels)
        if len(outputs) != 1 or tuple(outputs[0]["shape"]) != (1, 2, labels):
            raise BundleError(
                f"{bundle.model_path} gives {[tuple(d['shape']) for d in outputs]}, but "
                f"labels.txt has {labels} labels: expected one output of shape (1, 2, {labels})"
            )
        self._input = inputs[0]["index"]
        self._output = outputs[0]["index"]

    def raw(self, views: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores and familiarity for one face's views (``V×S×S×3`` uint8)."""
        self._interpreter.set_tensor(self._input, views[np.newaxis].astype(np.float32))
        self._interpreter.invoke()
        out = self._interpreter.get_tensor(self._output)[0].astype(np.float64)
        return out[0], out[1]

    def classify(self, views: np.ndarray) -> Prediction:
        """Ranked labels for one face's views (``V×S×S×3`` uint8, as ``crop_views`` makes)."""
        scores, familiarity = self.raw(views)
        scores = np.clip(scores, 0.0, None)
        scores = (
            scores / scores.sum() if scores.sum() > 0 else np.full_like(scores, 1 / len(scores))
        )
        order = np.argsort(-scores, kind="stable")
        best = int(order[0])
        unsure = self.bundle.unsure.is_unsure(float(scores[best]), float(familiarity[best]))
        ranked = tuple(LabelScore(self.bundle.labels[i], float(scores[i])) for i in order)
        return Prediction(scores=ranked, unsure=unsure, familiarity=float(familiarity[best]))
