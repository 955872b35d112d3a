"""Tests for the LiteRT face classifier over a real (tiny) bundle (bot.vision.classifier)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import BundleError
from bot.vision.bundle import ModelBundle, load_bundle, write_bundle
from bot.vision.classifier import FaceClassifier
from bot.vision.crop import crop_views
from bot.vision.faces import default_face_finder
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
    run: TinyRun, dest: Path, labels: tuple[str, ...] = TINY_LABELS, **info: Any
) -> ModelBundle:
    """The tiny run's model in a new, self-consistent bundle with other labels or settings."""
    values = json.loads((run.bundle / "model.json").read_text("utf-8"))
    values.update(info)
    model = (run.bundle / "model.tflite").read_bytes()
    return load_bundle(write_bundle(dest, model, labels, values))


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


def test_raw_gives_scores_and_familiarity_for_every_label(classifier: FaceClassifier) -> None:
    scores, familiarity = classifier.raw(face_views(classifier.bundle, 0))
    assert scores.shape == familiarity.shape == (3,)


def test_noise_is_less_familiar_than_a_drawn_face(classifier: FaceClassifier) -> None:
    size = classifier.bundle.crop.size
    noise = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), np.uint8)
    face = classifier.classify(face_views(classifier.bundle, 0))
    assert classifier.classify(noise).familiarity < face.familiarity


@pytest.mark.parametrize(("threshold", "unsure"), [(1e9, True), (-1e9, False)])
def test_unsure_follows_the_bundle_threshold(
    run: TinyRun, tmp_path: Path, threshold: float, unsure: bool
) -> None:
    bundle = rewritten(run, tmp_path / "b", unsure={"threshold": threshold, "prob_weight": 0.5})
    prediction = FaceClassifier(bundle).classify(face_views(bundle, 0))
    assert prediction.unsure is unsure


def test_labels_that_disagree_with_the_model_output_are_refused(
    run: TinyRun, tmp_path: Path
) -> None:
    bundle = rewritten(run, tmp_path / "b", labels=(*TINY_LABELS, "char d"))
    with pytest.raises(BundleError, match=r"labels\.txt has 4 labels: expected one output"):
        FaceClassifier(bundle)


def test_crop_views_that_disagree_with_the_model_input_are_refused(
    run: TinyRun, tmp_path: Path
) -> None:
    crop = {"margins": [1.0, 1.25, 1.5], "lift": 0.1, "size": 224}
    bundle = rewritten(run, tmp_path / "b", crop=crop)
    with pytest.raises(BundleError, match=r"describes \(1, 3, 224, 224, 3\)"):
        FaceClassifier(bundle)


def test_a_model_file_that_is_not_tflite_is_refused(tmp_path: Path, run: TinyRun) -> None:
    values = json.loads((run.bundle / "model.json").read_text("utf-8"))
    path = write_bundle(tmp_path / "b", b"not a flatbuffer" * 8, TINY_LABELS, values)
    with pytest.raises(BundleError, match="not a model LiteRT can run"):
        FaceClassifier(load_bundle(path))
