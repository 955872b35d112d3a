"""Only faces become data, through the real bot and the fake Discord: a picture in which no
detector finds an anime face gets no reply in a watched channel, a plain answer from
``/identify`` (its best guess only when asked), and is never taught; a picture with
several faces makes ``/teach`` ask which one."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pytest

from bot.presenters import BEST_GUESS
from bot.storage.schema import Character, Face, Image, TrainingExample
from bot.storage.scope import Scope
from tests.e2e.bundle import face_png
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import MANAGE_MESSAGES, FakeDiscord, StandardGuild
from tests.pictures import blank_picture, encode, group_picture, landscape_picture

pytestmark = pytest.mark.usefixtures("discord_error_log")

NO_FACE = {"blank": blank_picture, "landscape": landscape_picture}


def attachment(name: str, picture: Callable[[], np.ndarray]) -> tuple[str, bytes, str]:
    return (f"{name}.png", encode(picture()), "image/png")


@pytest.mark.parametrize("name", list(NO_FACE))
async def test_a_post_without_an_anime_face_gets_no_reply(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, name: str
) -> None:
    # The bot answers a post's pictures in order: once the face after it is answered, the
    # picture without one has had its turn.
    posted = await fake_discord.post_message(
        world.channel,
        world.member,
        attachments=[attachment(name, NO_FACE[name]), ("face.png", face_png(), "image/png")],
    )

    answer = await posted.wait_for_reply()

    assert posted.replies == [answer]
    assert "%" in answer.text
    assert await running.count(Face) == 1  # the face's, nothing of the other picture


@pytest.mark.parametrize("name", list(NO_FACE))
async def test_identify_says_plainly_that_it_found_no_anime_face(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, name: str
) -> None:
    command = await fake_discord.send_slash_command(
        "identify",
        {"image": attachment(name, NO_FACE[name])},
        user=world.member,
        channel=world.channel,
    )

    said = await command.wait_for_message()

    assert "I found no anime face in that picture." in said.text
    assert "guess: True" in said.text
    assert "%" not in said.text and said.custom_ids == []
    assert await running.count(Image) == 0


async def test_identify_shows_its_best_guess_when_asked_and_offers_no_correction(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    command = await fake_discord.send_slash_command(
        "identify",
        {"image": attachment("landscape", landscape_picture), "guess": True},
        user=world.member,
        channel=world.channel,
    )

    said = await command.wait_for_message()

    # The guess names a character (with its score, or as unlike anything it learnt from).
    assert BEST_GUESS in said.text and re.search(r"Char [ABC]", said.text)
    assert said.custom_ids == []
    assert await running.count(Image) == 0


@pytest.fixture
def moderator(world: StandardGuild) -> StandardGuild:
    """The standard guild whose admin may also moderate (teach)."""
    admin = world.guild.add_member("moderator", permissions=MANAGE_MESSAGES)
    return world._replace(admin=admin)


@pytest.mark.parametrize("name", list(NO_FACE))
async def test_teach_stores_nothing_of_a_picture_without_an_anime_face(
    fake_discord: FakeDiscord, moderator: StandardGuild, running: RunningAnimeBot, name: str
) -> None:
    world = moderator
    command = await fake_discord.send_slash_command(
        "teach",
        {"character": "Sonoda Umi", "image": attachment(name, NO_FACE[name])},
        user=world.admin,
        channel=world.channel,
    )

    said = await command.wait_for_message()

    assert said.ephemeral
    assert "1. not used: I found no anime face in that picture." in said.text
    assert await running.count(TrainingExample) == 0
    scopes = await running.rows(Character.scope_id)
    assert [scope for (scope,) in scopes if scope != Scope.BASE.id] == [], "no character taught"


async def test_teach_asks_which_face_and_learns_the_one_picked(
    fake_discord: FakeDiscord, moderator: StandardGuild, running: RunningAnimeBot
) -> None:
    world = moderator
    command = await fake_discord.send_slash_command(
        "teach",
        {"character": "Sonoda Umi", "image": attachment("group", group_picture)},
        user=world.admin,
        channel=world.channel,
    )
    summary = await command.wait_for_message()
    question = await command.wait_for_message(lambda m: m.id != summary.id)

    assert summary.text.endswith("1. 2 faces: which one? (below)")
    assert question.ephemeral and [f.filename for f in question.files] == ["faces.jpg"]
    buttons = {c["label"]: c["custom_id"] for c in question.walk_components() if c.get("label")}
    assert list(buttons) == ["face 1", "face 2", "none of them"]
    assert await running.count(TrainingExample) == 0

    click = await fake_discord.click_component(question, buttons["face 2"], world.admin)
    answered = await click.wait_for_original()

    assert answered.content == "Learnt face 2 as *Sonoda Umi*."
    assert answered.custom_ids == [] and answered.data["attachments"] == []
    assert await running.count(TrainingExample) == 1
