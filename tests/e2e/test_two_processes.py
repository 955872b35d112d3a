"""Two bot processes, as on two machines: one shard each, their own data and model
directories, sharing only a PostgreSQL database.

Issue 10: "A test runs two ``python -m bot run`` processes with different data and model
directories (as on two machines) sharing one PostgreSQL: a model promoted through one
serves in the other within seconds, and each still answers only its shards." Here both are
real processes; the fake Discord runs in the test. Which process answered is read from each
process's own ``/metrics`` (the fake cannot tell its REST callers apart).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from pathlib import Path

from bot.app import MODEL_POLL_SECONDS
from bot.storage.db import Storage
from bot.storage.scope import Scope
from tests.e2e.bundle import face_png, install_base_model, taught_crops
from tests.e2e.processes import BotProcess, Metrics, bot_settings, watch_every_channel
from tests.fake_discord import BotMessage, FakeDiscord, StandardGuild
from tests.pictures import Character
from tests.postgres import PostgresServer

SHARDS = 2
START_TIMEOUT = 60.0
REPLY_TIMEOUT = 20.0
RETRAIN_TIMEOUT = 150.0
TAUGHT = 5
NEW = Character("char_d", hair=(40, 200, 60), eyes=(200, 40, 200))
ATTACHMENT_CHANNEL = re.compile(r"downloaded \d+ bytes from 127\.0\.0\.1/attachments/(\d+)/")
RETRAIN_ENDINGS = ("✅", "Kept the current model", "Training stopped")


def shard_settings(
    fake: FakeDiscord, shard: int, root: Path, *, database_url: str, owner: int
) -> dict[str, str]:
    """The whole configuration of the process running ``shard`` of :data:`SHARDS`, on a
    machine of its own (its own data and model directories under ``root``)."""
    machine = root / f"machine{shard}"
    return bot_settings(
        fake, database_url=database_url, model_dir=machine / "models", data_dir=machine / "data"
    ) | {"SHARD_COUNT": str(SHARDS), "SHARD_IDS": str(shard), "OWNER_IDS": str(owner)}


def answered_with(bot: BotProcess, version: str) -> int:
    """How many pictures ``bot`` answered with model ``version`` (its log says which model
    answered; members never see it)."""
    return bot.log_text().count(f", model {version}, ")


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


async def teach_new_character(database_url: str, world: StandardGuild) -> None:
    """Store face crops of a character the base model does not know, as /teach does."""
    async with Storage.open(database_url) as storage:
        for crop in await asyncio.to_thread(taught_crops, NEW, TAUGHT):
            await storage.examples.add_taught(
                Scope.of_guild(world.guild.id), "Char D", crop, world.admin.id
            )


def another_version(bundle: Path, root: Path) -> Path:
    """A copy of ``bundle`` under another version name (a second base model)."""
    copy = root / "second-base"
    shutil.copytree(bundle, copy)
    info = json.loads((copy / "model.json").read_text("utf-8"))
    info["version"] = info["version"] + "-b"
    (copy / "model.json").write_text(json.dumps(info), "utf-8")
    return copy


async def test_two_machines_answer_only_their_shards_and_follow_models_promoted_by_either(
    fake_discord: FakeDiscord,
    postgres_server: PostgresServer,
    trained_bundle: Path,
    tmp_path: Path,
) -> None:
    fake = fake_discord
    worlds = [fake.add_standard_guild(f"guild {i}", shard=(i, SHARDS)) for i in range(SHARDS)]
    database_url = postgres_server.url(postgres_server.create_database())
    installer = tmp_path / "installer"
    base_a = await install_base_model(trained_bundle, database_url, installer, with_data=True)
    base_b = await install_base_model(
        another_version(trained_bundle, tmp_path), database_url, installer
    )
    owner = worlds[0].admin
    bots = [
        BotProcess(
            f"bot process of shard {i}",
            tmp_path / f"machine{i}",
            shard_settings(fake, i, tmp_path, database_url=database_url, owner=owner.user.id),
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
        assert [m.model_version for m in scraped] == [base_b] * SHARDS
        assert [m.answered for m in scraped] == [0] * SHARDS

        # 1. Each process answers its own guild's picture, with the base model.
        await post_picture_in_every_guild(fake, worlds)
        await wait_answered(bots, 1)
        assert [answered_with(bot, base_b) for bot in bots] == [1, 1]

        # 2. An admin retrains guild 0 through process 0: its own model serves it, only it.
        step = time.monotonic()
        await teach_new_character(database_url, worlds[0])
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
        async with Storage.open(database_url) as storage:
            own = await storage.model_versions.active(Scope.of_guild(worlds[0].guild.id))
        assert own is not None and own.version in done.content
        await post_picture_in_every_guild(fake, worlds)
        await wait_answered(bots, 2)
        assert answered_with(bots[0], own.version) == 1
        assert answered_with(bots[1], base_b) == 2

        # 3. The bot's owner goes back to the previous base model through process 0:
        # process 1, on the other machine, serves it within seconds.
        step = time.monotonic()
        command = await fake.send_slash_command(
            "base rollback", user=owner, channel=worlds[0].channel
        )
        said = await command.wait_for_message()
        assert f"Base model {base_a} serves again" in said.text, said.text
        await bots[1].wait_for_metrics(
            lambda m: m.model_version == base_a, "the earlier base model", MODEL_POLL_SECONDS + 3.0
        )
        timings["machine 1 follows the base rollback"] = time.monotonic() - step
        await post_picture_in_every_guild(fake, worlds)
        await wait_answered(bots, 3)
        assert answered_with(bots[0], own.version) == 2  # guild 0 keeps its own model
        assert answered_with(bots[1], base_a) == 1
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
        # Each machine cached the backbone in its own model directory.
        assert list((tmp_path / f"machine{shard}" / "models" / "backbones").glob("*.tflite"))
