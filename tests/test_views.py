"""The correction controls: menus and buttons per face, rebuilt after restarts, clicks that
reach the voting service through the interaction's client and always get a short reply."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app import AnimeBot
from bot.storage.db import Storage
from bot.views import OTHER, FixSelect, RightButton, correction_view, menu_labels
from bot.vision.classifier import LabelScore, Prediction
from bot.vision.geometry import Box
from bot.vision.recognizer import FaceResult
from tests.cogs import fake_bot, fake_interaction, sent_text
from tests.storage.helpers import record_face


@pytest.fixture
def bot(storage: Storage, tmp_path: Path) -> AnimeBot:
    return fake_bot(storage, tmp_path / "models")


def faces(*labels: str) -> tuple[FaceResult, ...]:
    return tuple(
        FaceResult(
            Box(0, 0, 10, 10),
            "cascade",
            Prediction((LabelScore(label, 0.9), LabelScore("other", 0.1)), False, 0.5),
            views=None,  # type: ignore[arg-type]
        )
        for label in labels
    )


NAMES = {"maki": "Maki", "rin": "Rin", "umi": "Umi"}


def test_view_has_a_menu_and_a_right_button_per_face() -> None:
    view = correction_view([7, 8], faces("maki", "rin"), NAMES)

    ids = [item.custom_id for item in view.children]  # type: ignore[attr-defined]
    assert ids == ["fix:7", "fix:8", "ok:7", "ok:8"]
    menu = view.children[0]
    assert isinstance(menu, FixSelect)
    assert [o.value for o in menu.item.options] == ["Maki", "Rin", "Umi", OTHER]
    assert menu.item.placeholder == "Face 1: who is it?"


def test_menus_offer_only_the_names_the_server_may_see() -> None:
    view = correction_view([7], faces("another servers character"), NAMES)

    menu = view.children[0]
    assert isinstance(menu, FixSelect)
    assert [o.value for o in menu.item.options] == ["Maki", "Rin", "Umi", OTHER]
    assert [item.custom_id for item in view.children] == ["fix:7"]  # type: ignore[attr-defined]


def test_menus_list_at_most_24_labels_plus_someone_else() -> None:
    names = {f"label {n}": f"Label {n}" for n in range(40)}
    view = correction_view([7], faces("label 39"), names)

    menu = view.children[0]
    assert isinstance(menu, FixSelect)
    assert len(menu.item.options) == 25
    assert menu.item.options[0].value == "Label 39"
    assert menu_labels(["A"], {"a": "A", "b": "B"}) == ["A", "B"]


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


async def test_a_click_reaches_the_voting_service_of_the_interactions_client(
    bot: AnimeBot, storage: Storage
) -> None:
    face = await record_face(storage, "nishikino maki", 0.95)
    interaction = fake_interaction(user_id=1)
    interaction.client = bot  # type: ignore[misc]

    await RightButton(face).callback(interaction)

    assert sent_text(interaction) == "Thanks — 1 of 2 votes needed for *Nishikino Maki*."
    assert bot.metrics.value("animebot_corrections_total") == 1
    bot.get_cog.assert_not_called()  # type: ignore[attr-defined]


async def test_a_click_that_fails_gets_a_message_not_a_traceback(bot: AnimeBot) -> None:
    interaction = fake_interaction()
    interaction.client = bot  # type: ignore[misc]

    await RightButton(999_999).callback(interaction)

    assert "no longer stored" in sent_text(interaction)
    assert bot.metrics.value("animebot_corrections_total") == 0
