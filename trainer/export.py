"""The backbone as a ``.tflite``, checked against the Keras model it came from.

The exported graph takes one crop view (``1×S×S×3`` raw RGB, float32 in [0, 255]) and
returns its pooled features (``1×F``). The head is not in the graph: it runs in numpy
(:mod:`bot.vision.head`), so heads trained later on the same backbone need no export.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from bot.errors import TrainingError
from bot.vision.bundle import PRECISIONS
from bot.vision.embedder import FaceEmbedder, combine_views
from bot.vision.head import Head

log = logging.getLogger(__name__)


class BackboneModule(tf.Module):
    """The Keras backbone as one TensorFlow function with a fixed input signature."""

    def __init__(self, backbone: Any, size: int) -> None:
        super().__init__(name="face_backbone")
        self.backbone = backbone
        # tf.Module does not see a Keras 3 model's variables; list the underlying
        # tf.Variables so conversion captures the backbone weights.
        self.backbone_variables = [w.value for w in backbone.weights]
        self.serve = tf.function(
            self._serve,
            input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="view")],
        )

    def _serve(self, view: tf.Tensor) -> tf.Tensor:
        return self.backbone(view, training=False)


def convert(
    module: BackboneModule,
    *,
    float16: bool = True,
    precision: str | None = None,
    calibration: np.ndarray | None = None,
) -> bytes:
    """The module as TFLite flatbuffer bytes.

    ``precision`` is one of :data:`PRECISIONS` (default: ``float16`` or ``float32`` as
    ``float16`` says); ``int8`` needs ``calibration``, face views (``N×S×S×3``) that set
    the activations' ranges.
    """
    precision = precision or ("float16" if float16 else "float32")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; one of {', '.join(PRECISIONS)}")
    concrete = module.serve.get_concrete_function()
    # Without the trackable object the converter freezes the variables in memory instead of
    # writing a SavedModel first: about 1 s instead of 8 s on two cores.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if precision == "int8":
        if calibration is None or not len(calibration):
            raise ValueError("int8 needs face views to calibrate on")
        views = np.asarray(calibration, np.float32)

        def representative() -> Iterator[list[np.ndarray]]:
            for view in views:
                yield [view[np.newaxis]]

        converter.representative_dataset = representative
    return bytes(converter.convert())


def check_agreement(
    model: bytes,
    module: BackboneModule,
    head: Head,
    samples: np.ndarray,
    *,
    tolerance: float = 0.02,
) -> float:
    """Largest difference between what LiteRT and TensorFlow give on ``samples``
    (``N×V×S×S×3`` faces): the head's scores and familiarity, computed from each one's
    embeddings.

    Raises :class:`TrainingError` when it exceeds ``tolerance`` or the top labels differ.
    """
    size = samples.shape[2]
    embedder = FaceEmbedder(model, input_size=size, feature_dim=_feature_dim(module, size))
    worst = 0.0
    for views in samples:
        pooled = [module.serve(tf.constant(v[np.newaxis], tf.float32)).numpy()[0] for v in views]
        expected = combine_views(np.stack(pooled))
        got = embedder.embed(views)
        want_scores, want_familiarity = head.score(expected[np.newaxis])
        scores, familiarity = head.score(got[np.newaxis])
        diff = max(
            float(np.abs(scores - want_scores).max()),
            float(np.abs(familiarity - want_familiarity).max()),
        )
        worst = max(worst, diff)
        finite = bool(np.isfinite(got).all())
        # The top label must match unless the first two are within the tolerance anyway.
        top_two = np.sort(want_scores[0])[-2:]
        clear_winner = top_two[1] - top_two[0] > tolerance
        label_differs = clear_winner and scores.argmax() != want_scores.argmax()
        if not finite or not diff <= tolerance or label_differs:
            raise TrainingError(
                f"the TFLite model disagrees with the trained model by {diff:.4f} "
                f"(tolerance {tolerance})"
            )
    log.info("TFLite agrees with TensorFlow within %.5f on %d faces", worst, len(samples))
    return worst


def _feature_dim(module: BackboneModule, size: int) -> int:
    return int(module.serve.get_concrete_function().structured_outputs.shape[-1])
