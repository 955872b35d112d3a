"""The correction controls: votes stored and counted once, rate limits, names, restarts."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.cogs.corrections import (
    OTHER,
    RATE_LIMIT_VOTES,
    Corrections,
    FixSelect,
    RightButton,
    menu_labels,
)
from bot.errors import BotError
from bot.storage.db import Storage
from bot.vision.classifier import LabelScore, Prediction
from bot.vision.geometry import Box
from bot.vision.recognizer import FaceResult, Recognition
from tests.cogs import fake_bot, fake_interaction, sent_text
from tests.storage.helpers import record_face


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with Storage.open(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        yield opened


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Corrections:
    return Corrections(fake_bot(storage, tmp_path / "models"))


async def test_a_correction_is_stored_and_counted(cog: Corrections, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    interaction = fake_interaction(user_id=1)

    await cog.vote(interaction, face, "hoshizora rin", False)

    assert sent_text(interaction) == "Thanks — 1 of 2 votes needed for *hoshizora rin*."
    assert (await storage.stats.collect()).votes == 1
    assert cog.bot.metrics.corrections == 1


async def test_one_person_voting_twice_counts_once(cog: Corrections, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    await cog.vote(fake_interaction(user_id=1), face, "hoshizora rin", False)
    again = fake_interaction(user_id=1)

    await cog.vote(again, face, "hoshizora rin", False)

    assert "1 of 2 votes" in sent_text(again)
    assert (await storage.stats.collect()).training_examples == 0


async def test_two_people_agreeing_make_training_data(cog: Corrections, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    await cog.vote(fake_interaction(user_id=1), face, "hoshizora rin", False)
    second = fake_interaction(user_id=2)

    await cog.vote(second, face, "hoshizora rin", False)

    assert "accepted as training data" in sent_text(second)
    assert await storage.examples.counts() == {"hoshizora rin": 1}


async def test_confirming_votes_for_the_models_answer(cog: Corrections, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.95)
    interaction = fake_interaction(user_id=1)

    await cog.confirm(interaction, face)

    assert "for *nishikino maki*" in sent_text(interaction)
    assert (await storage.stats.collect()).corrections == 0


async def test_votes_beyond_the_rate_limit_are_refused(cog: Corrections, storage: Storage) -> None:
    faces = [await record_face(storage, tag=str(n)) for n in range(RATE_LIMIT_VOTES + 1)]
    for face in faces[:-1]:
        await cog.vote(fake_interaction(user_id=1), face, "nishikino maki", True)

    with pytest.raises(BotError, match="Slow down"):
        await cog.vote(fake_interaction(user_id=1), faces[-1], "nishikino maki", True)
    assert (await storage.stats.collect()).votes == RATE_LIMIT_VOTES


async def test_a_new_accounts_vote_is_held(cog: Corrections, storage: Storage) -> None:
    face = await record_face(storage, "nishikino maki", 0.6)
    interaction = fake_interaction(user_id=1, created_at=datetime.now(UTC))

    await cog.vote(interaction, face, "hoshizora rin", False)

    assert "held for a moderator" in sent_text(interaction)
    assert (await storage.stats.collect()).held == 1


async def test_a_moderators_correction_is_training_data_at_once(
    cog: Corrections, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.99)
    moderator = fake_interaction(user_id=9, permissions=discord.Permissions(manage_messages=True))

    await cog.vote(moderator, face, "hoshizora rin", False)

    assert "Confirmed by a moderator" in sent_text(moderator)
    assert await storage.examples.counts() == {"hoshizora rin": 1}


async def test_a_vote_on_a_deleted_face_says_so(cog: Corrections) -> None:
    with pytest.raises(BotError, match="no longer stored"):
        await cog.vote(fake_interaction(), 999_999, "nishikino maki", False)


def _recognition(*labels: str) -> Recognition:
    faces = tuple(
        FaceResult(
            Box(0, 0, 10, 10),
            "cascade",
            Prediction((LabelScore(label, 0.9), LabelScore("other", 0.1)), False, 0.5),
            views=None,  # type: ignore[arg-type]
        )
        for label in labels
    )
    return Recognition(faces, 100, 100, 0.01, "v1")


def test_view_has_a_menu_and_a_right_button_per_face(cog: Corrections) -> None:
    view = cog.view_for([7, 8], _recognition("maki", "rin"), ["rin", "maki", "umi"])

    ids = [item.custom_id for item in view.children]  # type: ignore[attr-defined]
    assert ids == ["fix:7", "fix:8", "ok:7", "ok:8"]
    menu = view.children[0]
    assert isinstance(menu, FixSelect)
    assert [o.value for o in menu.item.options] == ["maki", "other", "rin", "umi", OTHER]
    assert menu.item.placeholder == "Face 1: who is it?"


def test_menus_list_at_most_24_labels_plus_someone_else(cog: Corrections) -> None:
    labels = [f"label {n}" for n in range(40)]
    view = cog.view_for([7], _recognition("label 39"), labels)

    menu = view.children[0]
    assert isinstance(menu, FixSelect)
    assert len(menu.item.options) == 25
    assert menu.item.options[0].value == "label 39"
    assert menu_labels(["a"], ["a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(("cls", "custom_id"), [(FixSelect, "fix:123"), (RightButton, "ok:123")])
async def test_controls_are_rebuilt_from_their_custom_id_after_a_restart(
    cls: type[FixSelect] | type[RightButton], custom_id: str
) -> None:
    template = cls.__discord_ui_compiled_template__
    match = template.fullmatch(custom_id)
    assert match is not None
    item: discord.ui.Item[Any] = (
        discord.ui.Select(custom_id=custom_id) if cls is FixSelect else discord.ui.Button()
    )

    rebuilt = await cls.from_custom_id(fake_interaction(), item, match)

    assert rebuilt.face_id == 123
    assert rebuilt.custom_id == custom_id
    assert re.fullmatch(template, "fix:abc") is None


async def test_the_cog_registers_its_dynamic_items(cog: Corrections) -> None:
    await cog.cog_load()

    cog.bot.add_dynamic_items.assert_called_once_with(FixSelect, RightButton)  # type: ignore[attr-defined]


async def test_a_correction_against_a_confident_model_and_the_majority_is_held(
    cog: Corrections, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.97)
    for user in (1, 2):
        await cog.confirm(fake_interaction(user_id=user), face)
    troll = fake_interaction(user_id=3)

    await cog.vote(troll, face, "hoshizora rin", False)

    assert "held for a moderator" in sent_text(troll)


async def test_a_click_that_fails_gets_a_message_not_a_traceback(cog: Corrections) -> None:
    interaction = fake_interaction()
    interaction.client = cog.bot  # type: ignore[misc]
    cog.bot.get_cog.return_value = cog  # type: ignore[attr-defined]

    await RightButton(999_999).callback(interaction)

    assert "no longer stored" in sent_text(interaction)
