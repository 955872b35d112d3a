"""Fine-tuning the backbone's top (trainer.finetune) on a tiny synthetic set, and its export."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the trainer extra (TensorFlow) is not installed")

from bot.vision.crop import CropSettings
from bot.vision.embedder import FaceEmbedder
from bot.vision.geometry import Box
from tests.pictures import CHARACTERS, character_picture
from trainer.backbone import build_mobilenet_v2
from trainer.finetune import (
    FineTuneOptions,
    SplitBackbone,
    augmented_view,
    block_output_layer,
    copies_per_face,
    fine_tune,
    jittered_views,
)
from trainer.train import holdout_mask

SIZE = 64
"""Small views keep the test fast; the network is the real MobileNetV2 with its weights."""


@pytest.fixture(scope="module")
def keras_backbone() -> Any:
    return build_mobilenet_v2(SIZE)


@pytest.fixture(scope="module")
def faces() -> tuple[np.ndarray, np.ndarray]:
    """Views (``N×S×S×3``) of three drawn characters, 8 augmented copies of 3 pictures each,
    and their labels."""
    rng = np.random.default_rng(0)
    views, labels = [], []
    options = FineTuneOptions()
    for label, character in enumerate(CHARACTERS[:3]):
        for _ in range(3):
            picture = character_picture(character, rng)
            height, width = picture.shape[:2]
            box = Box(width // 4, height // 5, width // 2, width // 2)
            for _ in range(8):
                views.append(augmented_view(picture, box, rng, options, SIZE, 0.1))
                labels.append(label)
    return np.stack(views), np.array(labels)


def test_block_outputs_are_the_residual_add_or_the_projection(keras_backbone: Any) -> None:
    assert block_output_layer(keras_backbone, 10) == "features_10_add"
    assert block_output_layer(keras_backbone, 11) == "features_11_conv_3"
    assert block_output_layer(keras_backbone, 1) == "features_1_conv_2"
    with pytest.raises(ValueError, match="no block 18"):
        block_output_layer(keras_backbone, 18)


def test_the_stem_and_frozen_top_compute_the_backbone(keras_backbone: Any) -> None:
    split = SplitBackbone(keras_backbone, FineTuneOptions(first_block=11), tuned=False)
    views = np.random.default_rng(1).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    whole = keras_backbone.predict_on_batch(views.astype(np.float32))
    # float16 stem activations cost a little precision, not more.
    np.testing.assert_allclose(split.features(split.stem_activations(views)), whole, atol=2e-2)
    assert split.whole() is keras_backbone
    assert split.feature_dim == 1280


def test_fine_tuning_learns_and_leaves_the_frozen_half_alone(
    keras_backbone: Any, faces: tuple[np.ndarray, np.ndarray]
) -> None:
    views, labels = faces
    options = FineTuneOptions(steps=30, batch_size=24, copies=8)
    split = SplitBackbone(keras_backbone, options)
    activations = split.stem_activations(views)
    before = split.features(activations)
    losses = fine_tune(split, activations, labels, class_count=3)
    after = split.features(activations)
    assert losses[-1] < 0.5 * losses[0]
    # The tuned half moved, the frozen half (×2) did not.
    assert np.abs(after[:, :1280] - before[:, :1280]).max() > 1e-2
    np.testing.assert_allclose(after[:, 1280:], before[:, 1280:], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(after[:, 1280:], axis=1), 2.0, rtol=1e-4)
    # What the model outputs from pixels is what training computed from the stem.
    direct = split.whole().predict_on_batch(views[:4].astype(np.float32))
    np.testing.assert_allclose(direct, after[:4], atol=2e-2)


def test_the_exported_tuned_backbone_agrees_with_keras(
    keras_backbone: Any, faces: tuple[np.ndarray, np.ndarray]
) -> None:
    from trainer.export import BackboneModule, convert

    views, labels = faces
    split = SplitBackbone(keras_backbone, FineTuneOptions(steps=3, batch_size=16))
    fine_tune(split, split.stem_activations(views), labels, class_count=3)
    whole = split.whole()
    model = convert(BackboneModule(whole, SIZE), float16=True)
    embedder = FaceEmbedder(model, input_size=SIZE, feature_dim=split.feature_dim)
    got = embedder.view_features(views[:3])
    want = whole.predict_on_batch(views[:3].astype(np.float32))
    cosine = (got * want).sum(axis=1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert cosine.min() > 0.999


def test_without_frozen_weight_only_the_tuned_features_remain(keras_backbone: Any) -> None:
    split = SplitBackbone(keras_backbone, FineTuneOptions(frozen_weight=0.0))
    views = np.random.default_rng(2).integers(0, 256, (2, SIZE, SIZE, 3), dtype=np.uint8)
    features = split.features(split.stem_activations(views))
    assert features.shape == (2, 1280) == (2, split.feature_dim)
    np.testing.assert_allclose(np.linalg.norm(features, axis=1), 1.0, rtol=1e-4)


def test_augmented_views_differ_and_keep_their_shape() -> None:
    rng = np.random.default_rng(3)
    picture = character_picture(CHARACTERS[0], rng)
    box = Box(100, 60, 120, 120)
    views = [augmented_view(picture, box, rng, FineTuneOptions(), 48, 0.1) for _ in range(4)]
    assert all(v.shape == (48, 48, 3) and v.dtype == np.uint8 for v in views)
    assert len({v.tobytes() for v in views}) == 4


def test_jittered_views_are_whole_sets_of_views() -> None:
    rng = np.random.default_rng(4)
    picture = character_picture(CHARACTERS[1], rng)
    crop = CropSettings(margins=(1.0, 2.0), size=32)
    sets = jittered_views(picture, Box(100, 60, 120, 120), rng, crop, 3)
    assert len(sets) == 3
    assert all(views.shape == (2, 32, 32, 3) for views in sets)
    assert sets[0].tobytes() != sets[1].tobytes()


def test_copies_shrink_when_there_are_many_faces() -> None:
    options = FineTuneOptions(copies=8, max_samples=1000)
    assert copies_per_face(50, options) == 8
    assert copies_per_face(200, options) == 5
    assert copies_per_face(10_000, options) == 2


def test_every_fifth_picture_of_a_character_with_three_is_held_out() -> None:
    labels = np.array([0] * 10 + [1] * 3 + [2] * 2)
    held = holdout_mask(labels, 5)
    assert np.flatnonzero(held).tolist() == [2, 7, 12]
    assert not holdout_mask(labels, 1).any()
