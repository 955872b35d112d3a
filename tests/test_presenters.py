"""Answers as members read them (bot.presenters)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.i18n import Catalog
from bot.presenters import (
    SURE_COLOUR,
    UNSURE_COLOUR,
    answer_embed,
    character_name,
    face_line,
    headline,
)
from bot.vision.classifier import LabelScore, Prediction
from bot.vision.geometry import Box
from bot.vision.recognizer import FaceResult, Recognition


def prediction(*scores: tuple[str, float], unsure: bool = False) -> Prediction:
    return Prediction(tuple(LabelScore(label, score) for label, score in scores), unsure, 0.5)


def recognition(*predictions: Prediction) -> Recognition:
    faces = tuple(
        FaceResult(Box(0, 0, 10, 10), "cascade", p, np.zeros((1, 1, 1, 3), np.uint8))
        for p in predictions
    )
    return Recognition(faces, 100, 100, 0.2, "20261201-000000-abcdef12")


@pytest.mark.parametrize(
    ("label", "names", "shown"),
    [
        ("nishikino maki", None, "Nishikino Maki"),
        ("Nishikino Maki", None, "Nishikino Maki"),
        ("McDonald", None, "McDonald"),
        ("nishikino maki", {"nishikino maki": "Nishikino MAKI"}, "Nishikino MAKI"),
    ],
)
def test_character_names_read_as_people_write_them(
    label: str, names: dict[str, str] | None, shown: str
) -> None:
    assert character_name(label, names) == shown


@pytest.mark.parametrize(
    ("predicted", "text"),
    [
        (prediction(("maki", 0.93), ("riko", 0.05)), "Maki (93%)"),
        (
            prediction(("maki", 0.41), ("riko", 0.3), unsure=True),
            "Not sure — it looks most like Maki (41%)",
        ),
        (
            prediction(("maki", 0.85), ("riko", 0.1), unsure=True),
            "Not sure — it looks like Maki, but unlike the pictures I learnt from",
        ),
    ],
)
def test_the_headline_says_who_first_and_explains_not_sure(
    predicted: Prediction, text: str
) -> None:
    assert headline(predicted) == text


def test_a_close_runner_up_is_shown_and_a_distant_one_is_not() -> None:
    close = prediction(("maki", 0.55), ("riko", 0.40), ("dia", 0.05))
    distant = prediction(("maki", 0.90), ("riko", 0.08), ("dia", 0.02))
    assert face_line(close, 3) == "Maki (55%) · or Riko (40%)"
    assert face_line(distant, 3) == "Maki (90%)"


def test_labels_shown_caps_the_runners_up() -> None:
    three_close = prediction(("maki", 0.4), ("riko", 0.35), ("dia", 0.25))
    assert face_line(three_close, 2) == "Maki (40%) · or Riko (35%)"


@pytest.mark.parametrize(("unsure", "colour"), [(False, SURE_COLOUR), (True, UNSURE_COLOUR)])
def test_the_colour_is_the_main_faces(unsure: bool, colour: object) -> None:
    main = prediction(("maki", 0.45), ("riko", 0.4), unsure=unsure)
    other = prediction(("riko", 0.9), ("maki", 0.1), unsure=not unsure)
    embed = answer_embed(recognition(main, other), labels_shown=3, annotated=True)
    assert embed.colour == colour


def test_several_faces_are_named_in_the_title_main_face_first() -> None:
    embed = answer_embed(
        recognition(prediction(("maki", 0.9)), prediction(("riko", 0.3), unsure=True)),
        labels_shown=3,
        annotated=True,
    )
    assert embed.title == "Maki, not sure"
    assert embed.description is not None
    assert embed.description.splitlines()[:2] == [
        "**1.** Maki (90%)",
        "**2.** Not sure — it looks most like Riko (30%)",
    ]


def test_the_answer_reads_in_japanese_for_a_japanese_reader() -> None:
    texts = Catalog.load().texts("ja")
    embed = answer_embed(
        recognition(prediction(("maki", 0.41), unsure=True)),
        labels_shown=3,
        annotated=False,
        texts=texts,
    )
    assert embed.title == "自信がありません — Makiに一番似ています（41%）"
    assert embed.footer.text == "間違っていますか？下から正しい名前を選んでください。"
