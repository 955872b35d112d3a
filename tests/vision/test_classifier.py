"""Tests for the LiteRT face classifier over a real (tiny) bundle (bot.vision.classifier)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.errors import BundleError
from bot.vision.bundle import BackboneInfo, ModelBundle, load_bundle, write_bundle
from bot.vision.classifier import FaceClassifier
from bot.vision.crop import CropSettings, crop_views
from bot.vision.faces import default_face_finder
from bot.vision.head import Head, UnsureRule
from tests.bundles import toy_head
from tests.pictures import CHARACTERS, TINY_LABELS, TinyRun, character_picture, tiny_training_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return tiny_training_run(tmp_path_factory)


@pytest.fixture(scope="module")
def classifier(run: TinyRun) -> FaceClassifier:
    return FaceClassifier(load_bundle(run.bundle))


def face_views(bundle: ModelBundle, character: int, seed: int = 7) -> np.ndarray:
    picture = character_picture(CHARACTERS[character], np.random.default_rng(seed))
    face = default_face_finder(None).find(picture)[0]
    return crop_views(picture, face.box, bundle.crop)


def rewritten(
    run: TinyRun,
    dest: Path,
    *,
    head: Head | None = None,
    backbone: BackboneInfo | None = None,
    model: bytes | None = None,
) -> ModelBundle:
    """The tiny run's bundle rewritten, self-consistently, with another head or backbone."""
    values = json.loads((run.bundle / "model.json").read_text("utf-8"))
    trained = load_bundle(run.bundle)
    path = write_bundle(
        dest,
        model or trained.model_path.read_bytes(),
        head or trained.head,
        backbone or trained.backbone,
        values,
    )
    return load_bundle(path)


@pytest.mark.parametrize("character", [0, 1, 2])
def test_classify_names_the_drawn_character(classifier: FaceClassifier, character: int) -> None:
    prediction = classifier.classify(face_views(classifier.bundle, character))
    assert prediction.best.label == TINY_LABELS[character]


def test_scores_are_ranked_and_sum_to_1(classifier: FaceClassifier) -> None:
    prediction = classifier.classify(face_views(classifier.bundle, 1))
    scores = [item.score for item in prediction.scores]
    assert sorted(item.label for item in prediction.scores) == list(TINY_LABELS)
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-6)
    assert prediction.best == prediction.scores[0]


def test_familiarity_is_a_cosine_similarity(classifier: FaceClassifier) -> None:
    prediction = classifier.classify(face_views(classifier.bundle, 2))
    assert -1.0 <= prediction.familiarity <= 1.0


def test_a_face_embedding_has_every_view_and_unit_length(classifier: FaceClassifier) -> None:
    embedding = classifier.embedder.embed(face_views(classifier.bundle, 0))
    assert embedding.shape == (classifier.bundle.backbone.embedding_dim,)
    assert np.linalg.norm(embedding) == pytest.approx(1.0, abs=1e-5)


def test_another_head_on_the_same_backbone_names_its_own_labels(
    run: TinyRun, tmp_path: Path
) -> None:
    trained = load_bundle(run.bundle)
    other = toy_head(("x", "y"), trained.backbone.embedding_dim)
    bundle = rewritten(run, tmp_path / "b", head=other)
    prediction = FaceClassifier(bundle).classify(face_views(bundle, 0))
    assert {s.label for s in prediction.scores} == {"x", "y"}


def test_noise_is_less_familiar_than_a_drawn_face(classifier: FaceClassifier) -> None:
    size, views = classifier.bundle.crop.size, len(classifier.bundle.crop.margins)
    noise = np.random.default_rng(0).integers(0, 256, (views, size, size, 3), np.uint8)
    face = classifier.classify(face_views(classifier.bundle, 0))
    assert classifier.classify(noise).familiarity < face.familiarity


@pytest.mark.parametrize(("threshold", "unsure"), [(1e9, True), (-1e9, False)])
def test_unsure_follows_the_bundle_threshold(
    run: TinyRun, tmp_path: Path, threshold: float, unsure: bool
) -> None:
    head = load_bundle(run.bundle).head.with_unsure(UnsureRule(threshold, 0.5))
    bundle = rewritten(run, tmp_path / "b", head=head)
    prediction = FaceClassifier(bundle).classify(face_views(bundle, 0))
    assert prediction.unsure is unsure


def test_a_feature_size_that_disagrees_with_the_model_output_is_refused(
    run: TinyRun, tmp_path: Path
) -> None:
    trained = load_bundle(run.bundle).backbone
    backbone = BackboneInfo(trained.name, trained.sha256, trained.input_size, 5, trained.crop)
    head = toy_head(TINY_LABELS, backbone.embedding_dim)
    bundle = rewritten(run, tmp_path / "b", head=head, backbone=backbone)
    with pytest.raises(BundleError, match=r"but its description says \(1, 5\)"):
        FaceClassifier(bundle)


def test_a_crop_size_that_disagrees_with_the_model_input_is_refused(
    run: TinyRun, tmp_path: Path
) -> None:
    trained = load_bundle(run.bundle).backbone
    crop = CropSettings(margins=trained.crop.margins, lift=trained.crop.lift, size=224)
    backbone = BackboneInfo(trained.name, trained.sha256, 224, trained.feature_dim, crop)
    bundle = rewritten(run, tmp_path / "b", backbone=backbone)
    with pytest.raises(BundleError, match=r"but its description says \(1, 224, 224, 3\)"):
        FaceClassifier(bundle)


def test_a_model_file_that_is_not_tflite_is_refused(tmp_path: Path, run: TinyRun) -> None:
    bundle = rewritten(run, tmp_path / "b", model=b"not a flatbuffer" * 8)
    with pytest.raises(BundleError, match="not a model LiteRT can run"):
        FaceClassifier(bundle)
