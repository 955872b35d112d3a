"""Small model parts for tests that need a head or a backbone description, not a real model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bot.vision.bundle import BackboneInfo
from bot.vision.crop import CropSettings
from bot.vision.head import Head, UnsureRule

TOY_CROP = CropSettings(margins=(1.0, 1.5), lift=0.1, size=224)


def toy_backbone(
    crop: CropSettings = TOY_CROP, feature_dim: int = 4, sha256: str = "0" * 64
) -> BackboneInfo:
    """A backbone description (no file behind it)."""
    return BackboneInfo("toy", sha256, crop.size, feature_dim, crop)


def toy_head(
    labels: Sequence[str],
    dim: int = 8,
    *,
    threshold: float = 0.62,
    prob_weight: float = 0.5,
    seed: int = 0,
) -> Head:
    """A head over ``dim``-long embeddings with random weights and one gallery face a label."""
    rng = np.random.default_rng(seed)
    count = len(labels)
    gallery = rng.normal(size=(count, dim)).astype(np.float32)
    gallery /= np.linalg.norm(gallery, axis=1, keepdims=True)
    return Head(
        labels=tuple(labels),
        weights=rng.normal(size=(dim, count)).astype(np.float32),
        bias=np.zeros(count, np.float32),
        gallery=gallery,
        gallery_labels=np.arange(count),
        top_k=1,
        unsure=UnsureRule(threshold, prob_weight),
    )
