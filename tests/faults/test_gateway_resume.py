"""The gateway drops while pictures are being answered and more are posted during the gap:
after the RESUME every post has exactly one reply (none doubled, none lost) and one
recorded image."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from bot.storage.schema import Image
from tests.e2e.bundle import E2E_CHARACTERS, face_png
from tests.e2e.conftest import Launch
from tests.e2e.test_bot_e2e import assert_answer_names_a_character
from tests.fake_discord import FakeDiscord, PostedMessage, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")

IN_FLIGHT = 3  # posted just before the disconnect
IN_GAP = 3  # posted while the shard is away
QUIET_PERIOD = 1.0  # after the last reply, time for a late double to show up
REPLY_TIMEOUT = 30.0


async def post(fake: FakeDiscord, world: StandardGuild, number: int) -> PostedMessage:
    character = E2E_CHARACTERS[number % len(E2E_CHARACTERS)]
    png = face_png(character, seed=100 + number)
    return await fake.post_message(
        world.channel, world.member, attachments=[(f"face{number}.png", png, "image/png")]
    )


async def test_a_gateway_resume_neither_doubles_nor_loses_replies(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch, trained_bundle: Path
) -> None:
    running = await launch(bundle=trained_bundle)
    warm_up = await post(fake_discord, world, 0)  # so the posts below are not slowed
    await warm_up.wait_for_reply(timeout=REPLY_TIMEOUT)

    posts = [await post(fake_discord, world, n) for n in range(1, IN_FLIGHT + 1)]
    session = await fake_discord.disconnect(0, code=4000)
    assert running.recognition.pending > 0 or any(not p.replies for p in posts), (
        "the disconnect should catch answers in flight"
    )
    posts += [await post(fake_discord, world, IN_FLIGHT + n) for n in range(1, IN_GAP + 1)]
    resumed = await fake_discord.wait_for_resume(0)
    replies = [await p.wait_for_reply(timeout=REPLY_TIMEOUT) for p in posts]
    await asyncio.sleep(QUIET_PERIOD)

    assert resumed.session_id == session.session_id, "resumed, not identified anew"
    assert resumed.replayed >= IN_GAP
    assert len(fake_discord.sessions) == 1
    for reply in replies:
        assert_answer_names_a_character(reply)
    per_post = Counter(m.reference_id for m in fake_discord.bot_messages)
    assert all(per_post[p.id] == 1 for p in [warm_up, *posts]), per_post
    recorded = Counter(message_id for (message_id,) in await running.rows(Image.message_id))
    assert all(recorded[p.id] == 1 for p in posts), recorded
