"""Watching is opt-in per channel (or every channel when the admin says so); a server that
cannot be answered yet stays quiet and its owner is told once, privately, how to start."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.answers import answered_name
from tests.e2e.bundle import face_png
from tests.e2e.conftest import Launch
from tests.fake_discord import BotMessage, FakeChannel, FakeDiscord, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")

QUIET = 1.5  # seconds a post is given to (wrongly) get a reply


async def post(fake: FakeDiscord, world: StandardGuild, channel: FakeChannel) -> BotMessage | None:
    """A member posts a face in ``channel``; the bot's reply, or None if it stayed quiet."""
    posted = await fake.post_message(
        channel, world.member, attachments=[("p.png", face_png(), "image/png")]
    )
    try:
        return await posted.wait_for_reply(timeout=QUIET)
    except AssertionError:
        return None


def owner_dms(fake: FakeDiscord) -> list[BotMessage]:
    dm = fake.dm_channel(fake.owner)
    return [m for m in fake.bot_messages if m.channel_id == dm.id]


async def settings(fake: FakeDiscord, world: StandardGuild, command: str, **options) -> None:  # type: ignore[no-untyped-def]
    handle = await fake.send_slash_command(
        f"settings {command}", options, user=world.admin, channel=world.channel
    )
    assert (await handle.wait_for_message()).ephemeral


async def test_a_fresh_install_answers_nothing_and_tells_the_owner_once_how_to_start(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    await launch(watch_all=False)

    assert await post(fake_discord, world, world.channel) is None
    assert await post(fake_discord, world, world.channel) is None

    [told] = owner_dms(fake_discord)
    assert "/teach" in told.content and "/retrain" in told.content
    assert "install-base" in told.content
    assert "/settings watch" in told.content
    assert world.guild.name in told.content


async def test_a_server_with_a_model_but_no_watched_channel_is_told_only_about_watching(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch, trained_bundle: Path
) -> None:
    await launch(bundle=trained_bundle, watch_all=False)

    assert await post(fake_discord, world, world.channel) is None

    [told] = owner_dms(fake_discord)
    assert "/settings watch" in told.content and "/teach" not in told.content


async def test_a_watched_channel_is_answered_and_another_is_not(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch, trained_bundle: Path
) -> None:
    other = world.guild.add_text_channel("memes")
    await launch(bundle=trained_bundle, watch_all=False)

    await settings(fake_discord, world, "watch", channel=world.channel)

    answer = await post(fake_discord, world, world.channel)
    assert answer is not None and answered_name(answer) is not None
    assert await post(fake_discord, world, other) is None
    assert owner_dms(fake_discord) == []


async def test_watch_all_answers_every_channel(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch, trained_bundle: Path
) -> None:
    other = world.guild.add_text_channel("memes")
    await launch(bundle=trained_bundle, watch_all=False)

    await settings(fake_discord, world, "watch_all", enabled=True)

    answer = await post(fake_discord, world, other)
    assert answer is not None and answered_name(answer) is not None
