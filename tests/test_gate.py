"""The gate: a candidate is compared with the serving model on pictures neither was trained
on, and refused when it is worse beyond chance or much worse at one character."""

from __future__ import annotations

import numpy as np
import pytest

from bot.gate import FOLDS, GateReport, compare, fold_of, sign_test

DIM = 32
PER_CHARACTER = 30
SERVING = "abcde"


class Faces:
    """Embeddings of drawn characters: a centre each, and noisy faces around it."""

    def __init__(self, characters: str = "abcdef", noise: float = 1.6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.features: dict[int, np.ndarray] = {}
        self.labels: dict[int, str] = {}
        self.groups: dict[int, str] = {}
        for character in characters:
            centre = rng.normal(size=DIM)
            for n in range(PER_CHARACTER):
                x = centre + rng.normal(scale=noise, size=(2, DIM))
                i = len(self.features)
                self.features[i] = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
                self.labels[i] = character
                self.groups[i] = f"{character}-{n}"

    def of(self, characters: str, per_character: int = PER_CHARACTER) -> list[int]:
        """The first ``per_character`` faces of each of ``characters``."""
        return [
            i
            for i, label in self.labels.items()
            if label in characters and int(self.groups[i].split("-")[1]) < per_character
        ]

    def compare(self, serving: list[int], candidate: list[int]) -> GateReport:
        return compare(self.features, self.labels, self.groups, serving, candidate)


@pytest.fixture(scope="module")
def faces() -> Faces:
    return Faces()


def test_a_candidate_trained_on_fewer_pictures_is_refused(faces: Faces) -> None:
    report = faces.compare(faces.of(SERVING), faces.of(SERVING, per_character=2))

    assert not report.promote
    assert report.worse > report.better
    assert "worse beyond chance" in str(report.reason)


def test_a_candidate_that_adds_a_character_is_promoted(faces: Faces) -> None:
    report = faces.compare(faces.of(SERVING), faces.of(SERVING + "f"))

    assert report.promote, report.reason
    assert [c.label for c in report.characters] == list(SERVING)
    (new,) = report.new_characters
    assert (new.label, new.examples, new.before) == ("f", PER_CHARACTER, None)
    assert new.after > 0.5


def test_a_candidate_much_worse_at_one_character_is_refused(faces: Faces) -> None:
    # Better at a and b, as much worse at c: not worse overall, but c drops sharply.
    serving = faces.of("cde") + faces.of("ab", 2)
    candidate = faces.of("abde") + faces.of("c", 2)

    report = faces.compare(serving, candidate)

    assert not report.promote
    assert [c.label for c in report.sharp_drops] == ["c"]
    assert "much worse at C" in str(report.reason)


def test_the_same_training_set_is_never_refused(faces: Faces) -> None:
    report = faces.compare(faces.of(SERVING), faces.of(SERVING))

    assert report.promote
    assert (report.worse, report.better) == (0, 0)
    assert report.before == report.after


def test_examples_deleted_since_the_serving_model_are_not_looked_at(faces: Faces) -> None:
    kept = faces.of(SERVING)
    deleted = {i: f for i, f in faces.features.items() if i not in set(kept[::2])}

    report = compare(deleted, faces.labels, faces.groups, kept, kept[1::2])

    assert report.compared <= len(kept[1::2])


@pytest.mark.parametrize(
    ("worse", "better", "p_value"),
    [(0, 0, 1.0), (1, 0, 0.5), (3, 0, 0.125), (5, 0, 1 / 32), (5, 5, 0.623046875)],
)
def test_the_sign_test(worse: int, better: int, p_value: float) -> None:
    assert sign_test(worse, better) == pytest.approx(p_value)


def test_an_examples_fold_is_fixed_by_its_picture() -> None:
    folds = [fold_of(f"picture {n}") for n in range(500)]

    assert folds == [fold_of(f"picture {n}") for n in range(500)]
    assert set(folds) == set(range(FOLDS))
