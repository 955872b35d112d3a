"""Two bot processes, one shard each, sharing a PostgreSQL database and a model directory.

Issue 4: "Two bot processes with one shard each against the fake API (which routes guilds
to shards as Discord does), sharing a PostgreSQL database: each answers only its guilds,
and a model promoted by one is used by both." Here both are real ``python -m bot run``
processes; the fake Discord runs in the test. Which process answered is read from each
process's own ``/metrics`` (the fake cannot tell its REST callers apart).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from bot.app import MODEL_POLL_SECONDS
from bot.models import ModelStore
from bot.storage.db import Storage
from bot.storage.scope import Scope
from tests.e2e.answers import assert_names_one_of
from tests.e2e.bundle import E2E_CHARACTERS, face_png, install_bundle, taught_crops
from tests.e2e.processes import BotProcess, Metrics, bot_settings, watch_every_channel
from tests.fake_discord import BotMessage, FakeDiscord, StandardGuild
from tests.postgres import PostgresServer

SHARDS = 2
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 20.0
RETRAIN_TIMEOUT = 150.0
TAUGHT_PER_CHARACTER = 5
LABELS = tuple(c.folder.replace("_", " ") for c in E2E_CHARACTERS)
ATTACHMENT_CHANNEL = re.compile(r"downloaded \d+ bytes from 127\.0\.0\.1/attachments/(\d+)/")
RETRAIN_ENDINGS = ("✅", "Kept the current model", "Training stopped")


def shard_settings(
    fake: FakeDiscord, shard: int, *, database_url: str, model_dir: Path, data_dir: Path
) -> dict[str, str]:
    """The whole configuration of the process running ``shard`` of :data:`SHARDS`."""
    return bot_settings(fake, database_url=database_url, model_dir=model_dir, data_dir=data_dir) | {
        "SHARD_COUNT": str(SHARDS),
        "SHARD_IDS": str(shard),
    }


def assert_answered_by(bots: list[BotProcess], version: str, times: int) -> None:
    """Each process answered ``times`` pictures with model ``version`` (its log says which
    model answered; members never see it)."""
    for bot in bots:
        assert bot.log_text().count(f", model {version}, ") == times, bot.log_tail(40)


async def post_picture_in_every_guild(
    fake: FakeDiscord, worlds: list[StandardGuild]
) -> list[BotMessage]:
    """A member posts a face in each guild at once; each post's only reply, in guild order."""
    posted = [
        await fake.post_message(
            w.channel, w.member, attachments=[("face.png", face_png(), "image/png")]
        )
        for w in worlds
    ]
    replies = await asyncio.gather(*(p.wait_for_reply(timeout=REPLY_TIMEOUT) for p in posted))
    for post, reply in zip(posted, replies, strict=True):
        assert reply.channel_id == post.channel_id
        answers = [m for m in fake.bot_messages if m.reference_id == post.id]
        assert len(answers) == 1, f"{len(answers)} replies to one post: {[m.text for m in answers]}"
    return list(replies)


async def wait_answered(bots: list[BotProcess], count: int) -> list[Metrics]:
    """Until each process's /metrics counts ``count`` answered pictures."""
    return [
        await bot.wait_for_metrics(lambda m: m.answered == count, f"{count} answered picture(s)")
        for bot in bots
    ]


async def teach(database_url: str, world: StandardGuild) -> None:
    """Store face crops of the trained characters as moderator-taught examples (as /teach does)."""
    async with Storage.open(database_url) as storage:
        for character, label in zip(E2E_CHARACTERS, LABELS, strict=True):
            for crop in await asyncio.to_thread(taught_crops, character, TAUGHT_PER_CHARACTER):
                await storage.examples.add_taught(
                    Scope.of_guild(world.guild.id), label, crop, world.admin.id
                )


async def test_two_bot_processes_answer_only_their_shards_and_follow_one_promoted_model(
    fake_discord: FakeDiscord,
    postgres_server: PostgresServer,
    trained_bundle: Path,
    tmp_path: Path,
) -> None:
    fake = fake_discord
    worlds = [fake.add_standard_guild(f"guild {i}", shard=(i, SHARDS)) for i in range(SHARDS)]
    database_url = postgres_server.url(postgres_server.create_database())
    model_dir = tmp_path / "shared-models"
    version_a = install_bundle(trained_bundle, model_dir)
    bots = [
        BotProcess(
            f"bot process of shard {i}",
            tmp_path / f"shard{i}",
            shard_settings(
                fake,
                i,
                database_url=database_url,
                model_dir=model_dir,
                data_dir=tmp_path / f"shard{i}" / "data",
            ),
        )
        for i in range(SHARDS)
    ]
    timings: dict[str, float] = {}
    began = time.monotonic()
    try:
        for bot in bots:
            bot.start()
        for bot in bots:  # both start at once, on one fresh database (migrations serialise)
            await bot.wait_ready(START_TIMEOUT)
        timings["both ready"] = time.monotonic() - began
        for world in worlds:
            await watch_every_channel(fake, world)

        # The fake routes each guild to the shard Discord would; one session per shard.
        assert sorted((s.shard_id, s.shard_count) for s in fake.sessions) == [(0, 2), (1, 2)]
        for shard, world in enumerate(worlds):
            assert fake.gateway.session_for_guild(world.guild.id).shard_id == shard
        scraped = [await bot.metrics() for bot in bots]
        assert [m.shards for m in scraped] == [f"{i}/{SHARDS}" for i in range(SHARDS)]
        assert [m.model_version for m in scraped] == [version_a] * SHARDS
        assert [m.answered for m in scraped] == [0] * SHARDS

        # 1. Each process answers its own guild's picture, and only that one.
        step = time.monotonic()
        for reply in await post_picture_in_every_guild(fake, worlds):
            assert_names_one_of(reply, LABELS)
        await wait_answered(bots, 1)
        assert_answered_by(bots, version_a, 1)
        timings["first answers"] = time.monotonic() - step

        # 2. An admin retrains in guild 0: process 0 trains and promotes the new model.
        step = time.monotonic()
        await teach(database_url, worlds[0])
        command = await fake.send_slash_command(
            "retrain", user=worlds[0].admin, channel=worlds[0].channel
        )
        assert (await command.wait_for_callback()).type == 5  # deferred, "thinking…"
        done = await fake.wait_for_message(
            worlds[0].channel,
            lambda m: m.content.startswith(RETRAIN_ENDINGS),
            timeout=RETRAIN_TIMEOUT,
        )
        timings["retrain"] = time.monotonic() - step
        print(f"/retrain ended with: {done.content}")
        assert done.content.startswith("✅"), done.content
        version_b = ModelStore(model_dir).current_version()
        assert version_b is not None and version_b != version_a, version_b
        assert version_b in done.content

        # Process 0 swapped at once; process 1 finds the new pointer by polling.
        step = time.monotonic()
        await bots[0].wait_for_metrics(lambda m: m.model_version == version_b, "model B", 2.0)
        await bots[1].wait_for_metrics(
            lambda m: m.model_version == version_b, "model B", MODEL_POLL_SECONDS + 5.0
        )
        timings["shard 1 picked up model B"] = time.monotonic() - step

        # Both answer with it, each still only in its own guild.
        for reply in await post_picture_in_every_guild(fake, worlds):
            assert_names_one_of(reply, LABELS)
        await wait_answered(bots, 2)
        assert_answered_by(bots, version_b, 1)
    except BaseException:
        for bot in bots:
            print(f"===== {bot.name}: {bot.log_path} =====\n{bot.log_tail(80)}")
        raise
    finally:
        exit_codes = [bot.stop() for bot in bots]
        timings["total"] = time.monotonic() - began
        print("timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))

    assert exit_codes == [0] * SHARDS, [bot.log_tail() for bot in bots]
    for shard, bot in enumerate(bots):
        assert bot.log_problems() == [], f"{bot.name} logged:\n{bot.log_tail(80)}"
        # Its log shows it downloaded only pictures posted in its own guild.
        downloads = {int(c) for c in ATTACHMENT_CHANNEL.findall(bot.log_text())}
        assert downloads == {worlds[shard].channel.id}, bot.log_tail(80)
