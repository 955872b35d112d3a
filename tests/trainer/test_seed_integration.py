"""Integration test: train on the 89 shared seed pictures and check what the model reaches.

The benchmark measures the figures the issue asks for (97% top-1); this test guards against
regressions with some slack, so it stays green on a slower or noisier day.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("tensorflow", reason="the trainer extra (TensorFlow) is not installed")

from bot.vision.bundle import load_bundle
from bot.vision.cascade import bundled_cascade
from bot.vision.recognizer import Recognizer
from tests.shared_data import SEED_TRAIN
from trainer.finetune import FineTuneOptions
from trainer.train import TrainOptions, TrainResult, train

CASCADE = bundled_cascade()
SEED_LABELS = ("nishikino maki", "sakurauchi riko", "takimoto hifumi")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not SEED_TRAIN.is_dir(), reason=f"the shared seed pictures are absent ({SEED_TRAIN})"
    ),
]


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A bundle trained on the seed pictures with the default settings but a shorter
    fine-tuning (about two minutes; benchmarks/recognition.py measures the defaults)."""
    root = tmp_path_factory.mktemp("seed")
    options = TrainOptions(
        data=SEED_TRAIN,
        out=root / "bundle",
        cache_dir=root / "cache",
        cascade_path=CASCADE,
        fine_tune=FineTuneOptions(steps=80, copies=4),
        progress=False,
    )
    return train(options)


@pytest.fixture(scope="module")
def seed_model(seed_run: TrainResult) -> dict[str, Any]:
    return seed_run.info


def test_seed_bundle_names_the_three_characters(seed_model: dict[str, Any]) -> None:
    assert tuple(seed_model["labels"]) == SEED_LABELS
    assert seed_model["training"]["pictures"] == 89
    assert seed_model["training"]["skipped"] == 0


def test_seed_held_out_top1_is_at_least_94_percent(seed_model: dict[str, Any]) -> None:
    metrics = seed_model["metrics"]
    # Every fifth picture of each character is held out of fine-tuning and the head: 18.
    assert (metrics["method"], seed_model["training"]["held_out"]) == ("held-out", 18)
    assert metrics["top1"] >= 0.94, f"held-out top-1 fell to {metrics['top1']:.3f}"


def test_a_detector_finds_a_face_on_97_percent_of_seed_pictures(
    seed_model: dict[str, Any],
) -> None:
    counts = seed_model["training"]["face_detectors"]
    found = sum(n for name, n in counts.items() if "none" not in name.split("+"))
    share = found / seed_model["training"]["pictures"]
    assert share >= 0.97, f"a detector found a face on {share:.1%} of pictures: {counts}"


def test_seed_tflite_agrees_with_keras(seed_model: dict[str, Any]) -> None:
    from trainer.train import AGREEMENT

    assert seed_model["tflite"]["precision"] == "int8"
    assert seed_model["tflite"]["max_diff"] < AGREEMENT["int8"]


def test_seed_bundle_names_a_known_picture(seed_run: TrainResult) -> None:
    recognizer = Recognizer.from_paths(load_bundle(seed_run.bundle), CASCADE)
    recognition = recognizer.recognize_bytes((SEED_TRAIN / "nishikino_maki" / "1.png").read_bytes())
    best = recognition.faces[0].prediction.best
    assert best.label == "nishikino maki", recognition.faces[0].prediction.scores
