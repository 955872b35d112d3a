"""Fine-tuning the backbone's top blocks so it tells look-alike characters apart.

The ImageNet backbone is split after block ``first_block - 1``: the *stem* (the blocks below)
stays frozen, so its activations are computed once per view and cached; the *top* (blocks
``first_block`` to 17 and the last 1×1 convolution) is copied, and the copy is trained with a
CosFace loss (additive cosine margin) on augmented views of the training faces. BatchNorm
stays frozen (its statistics come from ImageNet and the batches here are tiny and biased).

The exported backbone gives, per view, the tuned top's pooled features and the frozen top's
side by side, each scaled to unit length and the frozen part weighted by ``frozen_weight``.
Measured on the development sets: the tuned part alone separates the characters it was tuned
on best, but it *loses* to the frozen backbone on characters it never saw (a server's new
characters); the two together keep most of both (see the README's transfer figures).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from bot.vision.crop import CropSettings, crop_face, crop_views
from bot.vision.geometry import Box
from trainer import progress

log = logging.getLogger(__name__)

TUNED_PREFIX = "tuned_"
"""Layer names of the tuned copy of the top (the frozen top keeps the original names)."""


@dataclass(frozen=True)
class FineTuneOptions:
    """How the top of the backbone is fine-tuned (defaults measured on the development sets)."""

    first_block: int = 11
    """The first inverted-residual block (1–17) that is tuned; the ones below stay frozen."""
    frozen_weight: float = 2.0
    """The weight of the frozen features beside the tuned ones (0 drops them)."""
    steps: int = 240
    batch_size: int = 64
    learning_rate: float = 3e-4
    class_learning_rate: float = 1e-2
    margin: float = 0.2
    """CosFace's additive margin on the right class's cosine."""
    scale: float = 16.0
    """CosFace's logit scale."""
    copies: int = 8
    """Augmented copies of each training face."""
    max_samples: int = 12_000
    """Caps faces × copies (the stem activations of each copy are kept in memory)."""
    crop_range: tuple[float, float] = (0.9, 1.8)
    """An augmented view's side as a multiple of the face box's longer side."""
    shift: float = 0.08
    """The largest shift of an augmented view's centre, as a share of the face box's side."""
    seed: int = 0


def block_output_layer(model: Any, index: int) -> str:
    """The name of the layer whose output is inverted-residual block ``index``'s output
    (its residual add, or its projection's BatchNorm when it has no skip connection)."""
    from trainer.backbone import BLOCK_COUNT

    prefix = f"features_{index}_"
    names = [layer.name for layer in model.layers if layer.name.startswith(prefix)]
    if not names or not 1 <= index <= BLOCK_COUNT:
        raise ValueError(f"the backbone has no block {index}")
    return str(names[-1])


def _unit(x: Any) -> Any:
    import tensorflow as tf

    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)


class SplitBackbone:
    """A MobileNetV2 cut in two: a frozen stem, and a top that is both kept frozen and tuned.

    ``model`` is the Keras backbone of :func:`trainer.backbone.build_mobilenet_v2` (raw RGB in,
    pooled features out). With ``tuned=False`` it is the plain frozen backbone, cut the same
    way so the stem's activations can be cached either way.
    """

    def __init__(self, model: Any, options: FineTuneOptions, *, tuned: bool = True) -> None:
        import keras

        self.options = options
        self.tuned = tuned
        cut = model.get_layer(block_output_layer(model, options.first_block - 1)).output
        self.model = model
        self.stem = keras.Model(model.input, cut, name="stem")
        self.frozen_top = keras.Model(cut, model.output, name="frozen_top")
        self.tuned_top: Any = None
        self._compiled: Any = None
        if tuned:
            copy = keras.models.clone_model(
                self.frozen_top,
                clone_function=lambda layer: layer.__class__.from_config(
                    {**layer.get_config(), "name": TUNED_PREFIX + layer.name}
                ),
            )
            copy.set_weights(self.frozen_top.get_weights())
            copy = keras.Model(copy.input, copy.output, name="tuned_top")
            for layer in copy.layers:
                # BatchNorm keeps ImageNet's statistics and scales; only convolutions learn.
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
            self.tuned_top = copy

    @property
    def activation_shape(self) -> tuple[int, ...]:
        """The shape of one view's stem activations."""
        return tuple(int(d) for d in self.stem.output.shape[1:])

    @property
    def feature_dim(self) -> int:
        """The length of one view's features."""
        width = int(self.frozen_top.output.shape[-1])
        return 2 * width if self.tuned and self.options.frozen_weight > 0 else width

    def stem_activations(self, views: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """``N×S×S×3`` uint8 views → ``N×h×w×c`` float16 stem activations (half the memory;
        the tops run in float32 on them)."""
        out = np.empty((len(views), *self.activation_shape), np.float16)
        for start in range(0, len(views), batch_size):
            batch = views[start : start + batch_size].astype(np.float32)
            out[start : start + batch_size] = np.asarray(self.stem.predict_on_batch(batch))
        return out

    def features(self, activations: np.ndarray, batch_size: int = 128) -> np.ndarray:
        """Stem activations (``N×h×w×c``) → per-view features (``N×F``), as :meth:`whole`
        computes them from the pixels."""
        import tensorflow as tf

        if self._compiled is None:
            # A traced graph: about 3× faster than calling the Keras models eagerly.
            self._compiled = tf.function(self._combine, reduce_retracing=True)
        parts = []
        for start in range(0, len(activations), batch_size):
            batch = activations[start : start + batch_size].astype(np.float32)
            parts.append(np.asarray(self._compiled(tf.constant(batch))))
        if not parts:
            return np.zeros((0, self.feature_dim), np.float32)
        return np.concatenate(parts).astype(np.float32)

    def _combine(self, x: Any) -> Any:
        import tensorflow as tf

        frozen = self.frozen_top(x, training=False)
        if not self.tuned:
            return frozen
        tuned = _unit(self.tuned_top(x, training=False))
        if self.options.frozen_weight <= 0:
            return tuned
        return tf.concat([tuned, self.options.frozen_weight * _unit(frozen)], axis=-1)

    def whole(self) -> Any:
        """The backbone to export: raw RGB in, the per-view features of :meth:`features` out."""
        import keras

        if not self.tuned:
            return self.model
        inputs = keras.Input(self.model.input.shape[1:], name="rgb")
        cut = self.stem(inputs)
        tuned = keras.layers.UnitNormalization(name="tuned_unit")(self.tuned_top(cut))
        if self.options.frozen_weight <= 0:
            return keras.Model(inputs, tuned, name="face_backbone")
        frozen = keras.layers.UnitNormalization(name="frozen_unit")(self.frozen_top(cut))
        frozen = keras.layers.Rescaling(self.options.frozen_weight, name="frozen_weight")(frozen)
        joined = keras.layers.Concatenate(name="features")([tuned, frozen])
        return keras.Model(inputs, joined, name="face_backbone")


def augmented_view(
    image: np.ndarray,
    box: Box,
    rng: np.random.Generator,
    options: FineTuneOptions,
    size: int,
    lift: float,
) -> np.ndarray:
    """One randomly framed, flipped and recoloured ``size``×``size`` view of a face."""
    side = max(box.w, box.h)
    margin = float(rng.uniform(*options.crop_range))
    dx, dy = rng.uniform(-options.shift, options.shift, 2) * side
    moved = Box(round(box.x + dx), round(box.y + dy), box.w, box.h)
    view = crop_face(image, moved, margin, lift, size).astype(np.float32)
    if rng.random() < 0.5:
        view = view[:, ::-1]
    # Mild colour changes: brightness, contrast and a small per-channel gain.
    gain = rng.uniform(0.95, 1.05, 3) * rng.uniform(0.85, 1.15)
    mean = view.mean()
    view = (view - mean) * rng.uniform(0.85, 1.15) + mean
    return np.clip(view * gain, 0, 255).astype(np.uint8)


def jittered_views(
    image: np.ndarray,
    box: Box,
    rng: np.random.Generator,
    crop: CropSettings,
    count: int,
    *,
    scale: tuple[float, float] = (0.85, 1.2),
    shift: float = 0.1,
) -> list[np.ndarray]:
    """``count`` sets of a face's views (``V×S×S×3``) as another detector might have framed
    it: the box scaled and shifted a little. Used to calibrate "unsure" on faces that do not
    look exactly like the training crops."""
    out = []
    for _ in range(count):
        factor = float(rng.uniform(*scale))
        w, h = max(1, round(box.w * factor)), max(1, round(box.h * factor))
        cx, cy = box.center
        cx += float(rng.uniform(-shift, shift)) * box.w
        cy += float(rng.uniform(-shift, shift)) * box.h
        moved = Box(round(cx - w / 2), round(cy - h / 2), w, h)
        out.append(crop_views(image, moved, crop))
    return out


def _batches(count: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless shuffled mini-batches of row indices (each epoch a new permutation)."""
    while True:
        order = rng.permutation(count)
        for start in range(0, count - batch_size + 1, batch_size):
            yield order[start : start + batch_size]
        if count < batch_size:
            yield rng.choice(count, batch_size)


def fine_tune(
    backbone: SplitBackbone, activations: np.ndarray, labels: np.ndarray, class_count: int
) -> list[float]:
    """Train ``backbone``'s tuned top on stem ``activations`` (``M×h×w×c``) of augmented
    faces labelled ``labels`` with CosFace; returns the loss every 20 steps."""
    import keras
    import tensorflow as tf

    options = backbone.options
    if backbone.tuned_top is None:
        raise ValueError("this backbone has no tuned top")
    if len(activations) != len(labels) or len(labels) == 0:
        raise ValueError(f"{len(activations)} activations for {len(labels)} labels")
    rng = np.random.default_rng(options.seed)
    tf.random.set_seed(options.seed)
    top = backbone.tuned_top
    width = int(top.output.shape[-1])
    limit = math.sqrt(6.0 / (width + class_count))
    centres = tf.Variable(
        rng.uniform(-limit, limit, (width, class_count)).astype(np.float32), name="centres"
    )
    decay = keras.optimizers.schedules.CosineDecay(options.learning_rate, options.steps)
    top_optimizer = keras.optimizers.Adam(decay)
    centre_optimizer = keras.optimizers.Adam(options.class_learning_rate)
    weights = top.trainable_variables

    @tf.function(reduce_retracing=True)
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            embedded = _unit(top(x, training=False))
            cosine = tf.matmul(embedded, tf.math.l2_normalize(centres, axis=0))
            target = tf.one_hot(y, class_count)
            logits = options.scale * (cosine - options.margin * target)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        grads = tape.gradient(loss, [*weights, centres])
        top_optimizer.apply_gradients(zip(grads[:-1], weights, strict=True))
        centre_optimizer.apply_gradients([(grads[-1], centres)])
        return loss

    losses: list[float] = []
    batches = _batches(len(labels), min(options.batch_size, len(labels)), rng)
    for done in range(options.steps):
        rows = np.sort(next(batches))
        x = tf.constant(activations[rows].astype(np.float32))
        loss = float(step(x, tf.constant(labels[rows].astype(np.int32))))
        if done % 20 == 0 or done == options.steps - 1:
            losses.append(round(loss, 4))
            progress.report("fine-tuning", done + 1, options.steps)
    progress.report("fine-tuning", options.steps, options.steps)
    log.info("fine-tuned %d steps: loss %s", options.steps, losses)
    return losses


def copies_per_face(faces: int, options: FineTuneOptions) -> int:
    """Augmented copies of each face, fewer when there are many faces (memory)."""
    return max(2, min(options.copies, options.max_samples // max(1, faces)))
