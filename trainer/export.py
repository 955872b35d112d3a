"""One ``.tflite`` holding backbone and head, checked against the TensorFlow graph it came from.

The graph takes one face's crop views (``1×V×S×S×3`` raw RGB) and returns one ``1×2×C``
tensor: row 0 the scores (softmax), row 1 the familiarity (mean cosine similarity to each
label's nearest training faces). These are the numbers ``trainer.head.score`` computes, so
the validated behaviour is the shipped one.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import tensorflow as tf

from bot.errors import TrainingError
from trainer.head import Head

log = logging.getLogger(__name__)


def _unit(x: tf.Tensor) -> tf.Tensor:
    return x / (tf.norm(x, axis=-1, keepdims=True) + 1e-8)


class InferenceModule(tf.Module):
    """Backbone + head as one TensorFlow function with a fixed input signature."""

    def __init__(self, backbone: Any, head: Head, views: int, size: int) -> None:
        super().__init__(name="face_classifier")
        self.backbone = backbone
        # tf.Module does not see a Keras 3 model's variables; list the underlying
        # tf.Variables so conversion captures the backbone weights.
        self.backbone_variables = [w.value for w in backbone.weights]
        self.views = views
        self.weights = tf.constant(head.weights, tf.float32)
        self.bias = tf.constant(head.bias, tf.float32)
        self.prototypes = tf.constant(head.prototypes, tf.float32)
        labels = head.label_count
        mask = np.zeros((labels, len(head.prototype_labels)), np.float32)
        mask[head.prototype_labels, np.arange(len(head.prototype_labels))] = 1.0
        self.mask = tf.constant(mask)
        self.top_k = head.top_k
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([1, views, size, size, 3], tf.float32, name="crops")],
        )

    def _serve(self, crops: tf.Tensor) -> tf.Tensor:
        views = tf.reshape(crops, [self.views, *crops.shape[2:]])
        pooled = self.backbone(views, training=False)
        features = _unit(tf.reshape(_unit(pooled), [1, -1]))
        probs = tf.nn.softmax(features @ self.weights + self.bias)
        sims = features @ tf.transpose(self.prototypes)
        # Other labels' prototypes count as -1, the lowest cosine similarity, so they never
        # outrank a label's own (and a label with none gets -1, as head.score gives).
        masked = sims[:, tf.newaxis, :] * self.mask - (1.0 - self.mask)
        nearest = tf.math.top_k(masked, k=self.top_k).values
        familiarity = tf.reduce_mean(nearest, axis=-1)
        return tf.stack([probs, familiarity], axis=1)


def convert(module: InferenceModule, *, float16: bool = True) -> bytes:
    """The module as TFLite flatbuffer bytes (weights stored as float16 when asked)."""
    concrete = module.serve.get_concrete_function()
    # Without the trackable object the converter freezes the variables in memory instead of
    # writing a SavedModel first: about 1 s instead of 8 s on two cores.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.optimizations = [tf.lite.Optimize.DEFAULT] if float16 else []
    if float16:
        converter.target_spec.supported_types = [tf.float16]
    return bytes(converter.convert())


def run_tflite(model: bytes, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Run a converted model with LiteRT on one face's views; returns scores, familiarity."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(
        interpreter.get_input_details()[0]["index"], crops[np.newaxis].astype(np.float32)
    )
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
    return out[0], out[1]


def check_agreement(
    model: bytes, module: InferenceModule, samples: np.ndarray, *, tolerance: float = 0.02
) -> float:
    """Largest difference between TFLite and TensorFlow outputs on ``samples`` (``N×V×S×S×3``).

    Raises :class:`TrainingError` when it exceeds ``tolerance`` or the top labels differ.
    """
    worst = 0.0
    for views in samples:
        expected = module.serve(tf.constant(views[np.newaxis], tf.float32)).numpy()[0]
        scores, familiarity = run_tflite(model, views)
        want_scores, want_familiarity = expected[0], expected[1]
        diff = max(
            float(np.abs(scores - want_scores).max()),
            float(np.abs(familiarity - want_familiarity).max()),
        )
        worst = max(worst, diff)
        finite = bool(np.isfinite(scores).all() and np.isfinite(familiarity).all())
        # The top label must match unless the first two are within the tolerance anyway.
        top_two = np.sort(want_scores)[-2:]
        clear_winner = top_two[1] - top_two[0] > tolerance
        label_differs = clear_winner and scores.argmax() != want_scores.argmax()
        if not finite or not diff <= tolerance or label_differs:
            raise TrainingError(
                f"the TFLite model disagrees with the trained model by {diff:.4f} "
                f"(tolerance {tolerance})"
            )
    log.info("TFLite agrees with TensorFlow within %.5f on %d faces", worst, len(samples))
    return worst
