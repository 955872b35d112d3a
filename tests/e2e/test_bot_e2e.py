"""The real bot, unmodified discord.py included, against the local fake Discord API.

A test fails on any route the fake does not serve, any body Discord would refuse, and
any ERROR that discord.py logs.
"""

from __future__ import annotations

import asyncio
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from bot.errors import NoModelError
from bot.storage.schema import Face, Image, Prediction, TrainingRun, Vote
from bot.storage.scope import Scope
from bot.training import lock_name
from tests.e2e.answers import assert_names_one_of
from tests.e2e.bundle import E2E_CHARACTERS, face_png, install_base_model, taught_crops
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import AttachmentSpec, BotMessage, FakeDiscord, StandardGuild
from tests.fake_discord.models import FakeMember
from tests.postgres import PostgresServer

pytestmark = pytest.mark.usefixtures("discord_error_log")

LABELS = tuple(c.folder.replace("_", " ") for c in E2E_CHARACTERS)
RETRAIN_ENDINGS = ("✅", "Kept the current model", "Training stopped")
TRACEBACK_HINTS = ("Traceback", 'File "', "Error:", "Exception")


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width``×``height`` pixels, with one empty data chunk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


async def wait_until(condition: Callable[[], bool], what: str, attempts: int = 250) -> None:
    """Poll ``condition`` every 20 ms until it holds (fail after ``attempts``)."""
    for _ in range(attempts):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still waiting for {what}")


def assert_answer_names_a_character(reply: BotMessage) -> str:
    """The reply's main face names one of the trained characters with a percentage."""
    return assert_names_one_of(reply, LABELS)


def assert_short_error(reply: BotMessage, *words: str) -> None:
    """An error reply that says what went wrong, without internals."""
    text = reply.text.lower()
    for word in words:
        assert word in text, reply.text
    for hint in TRACEBACK_HINTS:
        assert hint not in reply.text, reply.text


async def post_picture(
    fake: FakeDiscord, world: StandardGuild, attachment: AttachmentSpec | tuple
) -> BotMessage:
    """A member posts ``attachment`` in #general; the bot's reply to it."""
    posted = await fake.post_message(world.channel, world.member, attachments=[attachment])
    return await posted.wait_for_reply()


async def test_picture_post_is_answered_with_a_character_and_stored(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    posted = await fake_discord.post_message(
        world.channel, world.member, attachments=[("face.png", face_png(), "image/png")]
    )

    reply = await posted.wait_for_reply()

    assert reply.reference_id == posted.id
    assert assert_answer_names_a_character(reply) == LABELS[0]
    assert [t.channel_id for t in fake_discord.typing] == [world.channel.id]
    images = await running.rows(Image.message_id, Image.guild_id, Image.author_id)
    assert images == [(posted.id, world.guild.id, world.member.id)]
    assert await running.count(Face) == 1
    ranked = dict(await running.rows(Prediction.rank, Prediction.label))
    assert sorted(ranked) == list(range(len(LABELS)))
    assert (ranked[0], set(ranked.values())) == (LABELS[0], set(LABELS))


async def gone(request: web.Request) -> web.Response:
    """A CDN answer for a deleted attachment."""
    return web.Response(status=404, text="not found")


BAD_INPUTS = {
    "text_named_png": (
        lambda fake: ("notes.png", b"just some words, not a picture\n" * 4, "image/png"),
        ("not",),
    ),
    "zero_bytes": (lambda fake: ("empty.png", b"", "image/png"), ("empty",)),
    "huge_declared_size": (
        lambda fake: ("huge.png", png_header(30_000, 30_000), "image/png"),
        ("too large",),
    ),
    "download_404": (
        lambda fake: AttachmentSpec(
            "deleted.png",
            face_png(),
            "image/png",
            url=fake.add_route("GET", "/gone/deleted.png", gone),
        ),
        ("gone",),
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_bad_input_gets_a_short_specific_reply_and_the_bot_carries_on(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, case: str
) -> None:
    make_attachment, words = BAD_INPUTS[case]

    reply = await post_picture(fake_discord, world, make_attachment(fake_discord))

    assert_short_error(reply, *words)
    assert await running.count(Image) == 0
    good = await post_picture(fake_discord, world, ("face.png", face_png(), "image/png"))
    assert_answer_names_a_character(good)


async def test_identify_defers_then_follows_up_with_the_answer(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    command = await fake_discord.send_slash_command(
        "identify",
        {"image": ("face.png", face_png(E2E_CHARACTERS[1]), "image/png")},
        user=world.member,
        channel=world.channel,
    )

    assert (await command.wait_for_callback()).type == 5
    followup = await command.wait_for_message()
    assert_answer_names_a_character(followup)
    assert await running.count(Image) == 1


async def test_picture_without_a_model_gets_no_reply_in_a_watched_channel(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    await launch()

    posted = await fake_discord.post_message(
        world.channel, world.member, attachments=[("face.png", face_png(), "image/png")]
    )

    with pytest.raises(AssertionError, match="no bot message"):
        await posted.wait_for_reply(timeout=1.5)


async def test_identify_without_a_model_says_so_privately(
    fake_discord: FakeDiscord, world: StandardGuild, launch: Launch
) -> None:
    await launch()

    command = await fake_discord.send_slash_command(
        "identify",
        {"image": ("face.png", face_png(), "image/png")},
        user=world.member,
        channel=world.channel,
    )

    answer = await command.wait_for_followup()
    assert answer.ephemeral
    assert NoModelError().user_message in answer.text


async def test_promoted_model_is_picked_up_by_the_watcher(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch: Launch,
    trained_bundle: Path,
    tmp_path: Path,
) -> None:
    running = await launch()
    running.bot.follow_model.change_interval(seconds=0.05)

    settings = running.bot.settings
    await install_base_model(trained_bundle, settings.database_url, tmp_path / "elsewhere")
    await wait_until(lambda: running.bot.base_version == trained_bundle.name, "the new model")

    reply = await post_picture(fake_discord, world, ("face.png", face_png(), "image/png"))
    assert_answer_names_a_character(reply)


async def test_correction_menu_choice_is_stored_as_a_vote_and_confirmed_privately(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    answer = await post_picture(fake_discord, world, ("face.png", face_png(), "image/png"))
    [menu_id] = [c for c in answer.custom_ids if c.startswith("fix:")]
    face_id = int(menu_id.removeprefix("fix:"))

    click = await fake_discord.click_component(answer, menu_id, world.admin, values=[LABELS[1]])

    confirmation = await click.wait_for_message()
    assert confirmation.ephemeral
    assert LABELS[1].title() in confirmation.text
    votes = await running.rows(Vote.face_id, Vote.user_id, Vote.label, Vote.is_confirmation)
    assert votes == [(face_id, world.admin.id, LABELS[1], False)]


async def test_right_button_is_stored_as_a_confirming_vote(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    answer = await post_picture(fake_discord, world, ("face.png", face_png(), "image/png"))
    [button_id] = [c for c in answer.custom_ids if c.startswith("ok:")]

    click = await fake_discord.click_component(answer, button_id, world.member)

    assert (await click.wait_for_message()).ephemeral
    votes = await running.rows(Vote.user_id, Vote.label, Vote.is_confirmation)
    assert votes == [(world.member.id, LABELS[0], True)]


async def test_retrain_by_a_member_without_manage_server_is_refused(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    command = await fake_discord.send_slash_command(
        "retrain", user=world.member, channel=world.channel
    )

    refusal = await command.wait_for_message()
    assert refusal.ephemeral
    assert "Manage Server" in refusal.text
    assert await running.count(TrainingRun) == 0


async def test_two_shards_share_a_database_and_follow_one_model_pointer(
    fake_discord: FakeDiscord,
    launch: Launch,
    postgres_server: PostgresServer,
    trained_bundle: Path,
    tmp_path: Path,
) -> None:
    worlds = [fake_discord.add_standard_guild(f"guild {i}", shard=(i, 2)) for i in range(2)]
    database_url = postgres_server.url(postgres_server.create_database())
    shared = {"database_url": database_url, "model_dir": tmp_path / "shared-models"}
    bots = [await launch(name=f"shard{i}", shard=(i, 2), **shared) for i in range(2)]
    for running, world in zip(bots, worlds, strict=True):
        assert [g.id for g in running.bot.guilds] == [world.guild.id]
        running.bot.follow_model.change_interval(seconds=0.05)

    await install_base_model(trained_bundle, database_url, tmp_path / "installer")
    for running in bots:
        await wait_until(
            lambda r=running: r.bot.base_version == trained_bundle.name,
            f"{running.bot.shards_description()} to load the new model",
        )

    for running, world in zip(bots, worlds, strict=True):
        reply = await post_picture(fake_discord, world, ("face.png", face_png(), "image/png"))
        assert_answer_names_a_character(reply)
        assert running.recognition.handled == 1
    images = await bots[0].rows(Image.guild_id)
    assert sorted(images) == sorted((w.guild.id,) for w in worlds)


async def teach(running: RunningAnimeBot, world: StandardGuild, per_character: int) -> None:
    """Store face crops of the trained characters as moderator-taught examples, as /teach does."""
    for character, label in zip(E2E_CHARACTERS, LABELS, strict=True):
        for crop in await asyncio.to_thread(taught_crops, character, per_character):
            await running.storage.examples.add_taught(
                Scope.of_guild(world.guild.id), label, crop, world.admin.id
            )


async def test_retrain_by_an_admin_on_taught_faces_puts_a_new_model_to_work(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch: Launch,
    trained_bundle: Path,
    tmp_path: Path,
) -> None:
    running = await launch()
    database_url = running.bot.settings.database_url
    await install_base_model(trained_bundle, database_url, tmp_path / "installer", with_data=True)
    await teach(running, world, per_character=5)

    command = await fake_discord.send_slash_command(
        "retrain", user=world.admin, channel=world.channel
    )

    assert (await command.wait_for_callback()).type == 5
    done = await fake_discord.wait_for_message(
        world.channel,
        lambda m: m.content.startswith(("✅", "Kept", "Training stopped")),
        timeout=150,
    )
    assert done.content.startswith("✅"), done.content
    assert done.ephemeral
    shown = [edit.get("content") or "" for edit in done.edits]
    stages = [m[1] for text in shown if (m := re.search(r"^▸ \*\*(.+?)\*\*", text, re.M))]
    assert list(dict.fromkeys(stages)) == [
        "Reading the faces",
        "Training and testing the model",
        "Comparing it with the current model",
    ], shown
    percents = [int(m[1]) for text in shown if (m := re.search(r" (\d+)%", text))]
    assert percents == sorted(percents) and percents[-1] > percents[0], shown
    [summary] = done.embeds
    assert summary["title"].startswith("Pictures neither model was trained on")
    assert re.search(r"^Char [ABC]: (new|\d+/\d+) → \d+/\d+$", summary["description"], re.M)
    own = await running.models.serving(world.guild.id)
    assert own is not None and own.scope == Scope.of_guild(world.guild.id)
    reply = await post_picture(fake_discord, world, ("face.png", face_png(), "image/png"))
    assert_answer_names_a_character(reply)
    assert await running.count(TrainingRun) == 1

    again = await fake_discord.send_slash_command(
        "retrain", user=world.admin, channel=world.channel
    )
    refused = await again.wait_for_message()
    assert refused.ephemeral and refused.text.startswith("Slow down: try again in")
    assert await running.count(TrainingRun) == 1


async def test_retrain_tells_the_channel_when_its_private_message_expired(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    expired = {"code": 50027, "message": "Invalid Webhook Token"}
    fake_discord.fail_requests(
        "PATCH", "/webhooks/{app}/{token}/messages/{id}", status=401, body=expired, times=50
    )

    await fake_discord.send_slash_command("retrain", user=world.admin, channel=world.channel)

    notice = await fake_discord.wait_for_message(
        world.channel, lambda m: not m.ephemeral and "the training you started ended" in m.text
    )
    assert notice.content.startswith(f"<@{world.admin.id}>, the training you started ended.")
    assert "no confirmed pictures of its own" in notice.content


async def retrain_answer(fake: FakeDiscord, world: StandardGuild, user: FakeMember) -> str:
    """The text a ``/retrain`` ends with: its refusal, or the last state of its status."""
    command = await fake.send_slash_command("retrain", user=user, channel=world.channel)
    message = await command.wait_for_message()
    assert message.ephemeral
    if message.text.startswith("Slow down") or "permission" in message.text:
        return message.text
    finished = await fake.wait_for_message(
        world.channel,
        lambda m: m.id == message.id and not m.content.startswith("Preparing"),
        timeout=30,
    )
    return finished.content


async def test_refused_retrains_do_not_start_the_servers_cooldown(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    server = world.guild.id
    no_permission = await retrain_answer(fake_discord, world, world.member)
    assert "Manage Server" in no_permission
    await running.storage.locks.acquire(lock_name(server), "another-host/run", 600)
    busy = await retrain_answer(fake_discord, world, world.admin)
    assert busy.startswith("Not started. A training of this server is already running"), busy
    await running.storage.locks.release(lock_name(server), "another-host/run")

    for _ in range(2):
        no_data = await retrain_answer(fake_discord, world, world.admin)
        assert no_data.startswith("Training stopped. This server has no confirmed pictures"), (
            no_data
        )
