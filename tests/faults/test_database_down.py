"""PostgreSQL stopped under a running bot: pictures are still answered (unrecorded, without
correction controls), corrections are refused with a clear message, and once the server is
back the bot records and takes corrections again by itself, without a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.presenters import CORRECT_ME, NOT_RECORDED
from bot.storage.schema import Image, Vote
from bot.views import NOT_SAVED
from tests.e2e.bundle import face_png
from tests.e2e.conftest import Launch
from tests.e2e.test_bot_e2e import LABELS, assert_answer_names_a_character
from tests.fake_discord import BotMessage, FakeChannel, FakeDiscord, FakeMember, StandardGuild
from tests.postgres import PostgresServer

pytestmark = pytest.mark.usefixtures("discord_error_log")

QUIET_PERIOD = 0.5  # how long an unwatched channel must stay without a reply


async def post_picture(fake: FakeDiscord, channel: FakeChannel, author: FakeMember) -> BotMessage:
    posted = await fake.post_message(
        channel, author, attachments=[("face.png", face_png(), "image/png")]
    )
    return await posted.wait_for_reply()


async def click(fake: FakeDiscord, answer: BotMessage, prefix: str, user: FakeMember) -> str:
    """Press the answer's "right" button (``ok:``) or pick a label in its menu (``fix:``);
    the ephemeral reply's text."""
    [custom_id] = [c for c in answer.custom_ids if c.startswith(prefix)]
    values = [LABELS[1]] if prefix == "fix:" else None
    handle = await fake.click_component(answer, custom_id, user, values=values)
    reply = await handle.wait_for_message()
    assert reply.ephemeral
    return reply.text


async def test_recognition_outlives_the_database_and_corrections_resume_without_a_restart(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch: Launch,
    trained_bundle: Path,
    restartable_postgres: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = restartable_postgres
    unwatched = world.guild.add_text_channel("elsewhere")
    running = await launch(
        bundle=trained_bundle,
        database_url=server.url(server.create_database()),
        watch_all=False,
    )
    await running.storage.guilds.watch(world.guild.id, world.channel.id)
    before = await post_picture(fake_discord, world.channel, world.member)
    assert any(c.startswith("ok:") for c in before.custom_ids)

    await asyncio.to_thread(server.stop)
    with caplog.at_level(logging.WARNING, logger="bot"):
        ignored = await fake_discord.post_message(
            unwatched, world.member, attachments=[("face.png", face_png(), "image/png")]
        )
        during = await post_picture(fake_discord, world.channel, world.member)
        refusals = [
            await click(fake_discord, before, "ok:", world.member),
            await click(fake_discord, before, "fix:", world.admin),
        ]
        await asyncio.sleep(QUIET_PERIOD)

    assert_answer_names_a_character(during)
    assert NOT_RECORDED in during.text
    assert during.custom_ids == [] and CORRECT_ME not in during.text
    assert ignored.replies == [], "the last settings read still apply: not a watched channel"
    assert refusals == [NOT_SAVED, NOT_SAVED]
    warned = {r.name for r in caplog.records if r.levelno == logging.WARNING}
    assert {"bot.cogs.recognize", "bot.views"} <= warned

    await asyncio.to_thread(server.start)
    after = await post_picture(fake_discord, world.channel, world.member)
    accepted = [
        await click(fake_discord, before, "ok:", world.member),
        await click(fake_discord, after, "fix:", world.member),
    ]

    assert_answer_names_a_character(after)
    assert NOT_RECORDED not in after.text
    assert all(text.startswith("Thanks") for text in accepted), accepted
    recorded = await running.rows(Image.message_id)
    assert sorted(recorded) == sorted([(before.reference_id,), (after.reference_id,)])
    assert len(await running.rows(Vote.id)) == 2
