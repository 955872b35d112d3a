"""/review list as a moderator meets it: held faces a page at a time, each with its crop, a
link to its message and accept/dismiss buttons, however many votes are held."""

from __future__ import annotations

import pytest

from bot.review_pages import PAGE_SIZE
from bot.storage.schema import TrainingExample, Vote
from tests.e2e.conftest import RunningAnimeBot
from tests.fake_discord import MANAGE_MESSAGES, BotMessage, FakeDiscord, FakeMember, StandardGuild
from tests.storage.helpers import CHANNEL, face_record, record_image

pytestmark = pytest.mark.usefixtures("discord_error_log")

HELD = 25


async def hold_votes(running: RunningAnimeBot, world: StandardGuild, count: int) -> list[int]:
    """``count`` faces the model called Char A, each with a new account's vote for Char B."""
    faces = []
    for number in range(count):
        recorded = await record_image(
            running.storage,
            face_record("char a", 0.97, tag=f"face {number}"),
            guild_id=world.guild.id,
        )
        [face] = recorded.face_ids
        outcome = await running.storage.votes.cast(
            face, world.member.id, world.guild.id, "char b", False, new_account=True
        )
        assert outcome.status == "held"
        faces.append(face)
    return faces


@pytest.fixture
def moderator(world: StandardGuild) -> FakeMember:
    return world.guild.add_member("moderator", permissions=MANAGE_MESSAGES)


async def review(fake: FakeDiscord, world: StandardGuild, moderator: FakeMember) -> BotMessage:
    command = await fake.send_slash_command("review list", user=moderator, channel=world.channel)
    return await command.wait_for_message()


def summary(message: BotMessage) -> str:
    """The line above the first held face (how many, which page)."""
    return message.embeds[0]["author"]["name"] if message.embeds else ""


def button(message: BotMessage, label: str) -> str:
    return next(c["custom_id"] for c in message.walk_components() if c.get("label") == label)


async def test_the_25th_held_vote_is_listed_a_page_at_a_time(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    faces = await hold_votes(running, world, HELD)

    listed = await review(fake_discord, world, moderator)

    assert listed.ephemeral
    assert len(listed.embeds) == PAGE_SIZE
    assert summary(listed) == "Held corrections: 25 face(s), page 1 of 7"
    first = listed.embeds[0]
    assert first["title"] == f"1. Face {faces[0]}"
    assert f"<@{world.member.id}> says **Char B** (new account)" in first["description"]
    assert "The model said Char A (97%)." in first["description"]
    assert f"https://discord.com/channels/{world.guild.id}/{CHANNEL}/" in first["description"]
    assert first["thumbnail"]["url"] == f"attachment://face-{faces[0]}.jpg"
    assert sorted(f.filename for f in listed.files) == sorted(
        f"face-{face}.jpg" for face in faces[:PAGE_SIZE]
    )
    labels = [c.get("label") for c in listed.walk_components() if c.get("type") == 2]
    assert labels[:2] == ["1. Accept “Char B”", "1. Dismiss"]
    assert labels[-2:] == ["◀ Previous", "Next ▶"]


async def test_next_shows_the_following_faces(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    faces = await hold_votes(running, world, HELD)
    listed = await review(fake_discord, world, moderator)

    click = await fake_discord.click_component(listed, button(listed, "Next ▶"), moderator)

    page = await click.wait_for_original(lambda m: "page 2 of 7" in summary(m))
    assert page.embeds[0]["title"] == f"5. Face {faces[PAGE_SIZE]}"


async def test_accept_makes_the_face_training_data_and_redraws_the_page(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    faces = await hold_votes(running, world, 2)
    listed = await review(fake_discord, world, moderator)

    click = await fake_discord.click_component(
        listed, button(listed, "1. Accept “Char B”"), moderator
    )

    page = await click.wait_for_original(lambda m: "1 face(s)" in summary(m))
    assert f"Face {faces[0]} is now training data for *Char B*." in page.content
    assert page.embeds[0]["title"] == f"1. Face {faces[1]}"
    assert await running.count(TrainingExample) == 1


async def test_dismissing_the_last_says_nothing_else_is_waiting(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, moderator: FakeMember
) -> None:
    await hold_votes(running, world, 1)
    listed = await review(fake_discord, world, moderator)

    click = await fake_discord.click_component(listed, button(listed, "1. Dismiss"), moderator)

    page = await click.wait_for_original(lambda m: "Nothing else is waiting." in m.text)
    assert page.embeds == [] and page.components == []
    assert await running.rows(Vote.status) == [("dismissed",)]
