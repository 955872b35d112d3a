"""One held face as /review shows it (bot.review_pages.face_embed)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.i18n import Catalog
from bot.review_pages import face_embed
from bot.storage.schema import HoldReason
from bot.storage.votes import HeldFace, HeldVote

NAMES = {"nishikino maki": "Nishikino Maki", "sakurauchi riko": "Sakurauchi Riko"}


def held(accepted: str | None) -> HeldFace:
    vote = HeldVote(
        face_id=5,
        user_id=7,
        label="sakurauchi riko",
        reason=HoldReason.NEW_ACCOUNT,
        model_label="nishikino maki",
        model_score=0.97,
        created_at=datetime(2026, 12, 8, tzinfo=UTC),
    )
    return HeldFace(5, 10, 11, b"", (vote,), accepted)


@pytest.mark.parametrize(
    ("accepted", "said"),
    [
        (None, None),
        ("sakurauchi riko", "Already taught as **Sakurauchi Riko**."),
        (
            "nishikino maki",
            "Already taught as **Nishikino Maki**: accepting makes it **Sakurauchi Riko** instead.",
        ),
    ],
)
def test_a_held_face_already_taught_says_so(accepted: str | None, said: str | None) -> None:
    description = face_embed(1, held(accepted), 1, NAMES).description or ""

    if said is None:
        assert "Already taught" not in description
    else:
        assert said in description.splitlines()


def test_the_already_taught_line_is_japanese_for_a_japanese_moderator() -> None:
    texts = Catalog.load().texts("ja")

    description = face_embed(1, held("nishikino maki"), 1, NAMES, texts).description or ""

    assert "すでに **Nishikino Maki** として学習済みです。" in description
    assert "Already" not in description
