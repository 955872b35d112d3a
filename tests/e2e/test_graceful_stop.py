"""Stopping the bot (SIGTERM from ``docker stop``, systemd or Kubernetes) answers the pictures
in progress first, turns new ones away with a reply, and never waits past its grace period."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.bundle import face_png, install_base_model
from tests.e2e.conftest import RunningAnimeBot
from tests.e2e.processes import BotProcess, bot_settings, watch_every_channel
from tests.e2e.test_bot_e2e import assert_answer_names_a_character
from tests.fake_discord import AttachmentSpec, FakeDiscord, PostedMessage, StandardGuild

pytestmark = pytest.mark.usefixtures("discord_error_log")

REPLY_TIMEOUT = 30.0
START_TIMEOUT = 60.0


class HeldDownload:
    """A CDN route that answers only when released: a picture kept "in progress"."""

    def __init__(self, fake: FakeDiscord, data: bytes) -> None:
        self.data = data
        self.requested = asyncio.Event()
        self.release = asyncio.Event()
        self.url = fake.add_route("GET", "/held/face.png", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.requested.set()
        await self.release.wait()
        return web.Response(body=self.data, content_type="image/png")

    async def post(self, fake: FakeDiscord, world: StandardGuild) -> PostedMessage:
        """Post the held picture and wait until the bot is downloading it."""
        posted = await fake.post_message(
            world.channel,
            world.member,
            attachments=[AttachmentSpec("face.png", self.data, "image/png", url=self.url)],
        )
        await asyncio.wait_for(self.requested.wait(), REPLY_TIMEOUT)
        return posted


async def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"still waiting for {what} after {timeout:g} s")
        await asyncio.sleep(0.02)


async def test_stopping_answers_pictures_in_progress_and_turns_new_ones_away(
    fake_discord: FakeDiscord, world: StandardGuild, running: RunningAnimeBot
) -> None:
    held = HeldDownload(fake_discord, face_png())
    in_progress = await held.post(fake_discord, world)

    stopping = asyncio.create_task(running.bot.stop_gracefully(grace=REPLY_TIMEOUT))
    await until(lambda: not running.bot.accepting, "the bot to stop taking pictures")
    late = await fake_discord.post_message(
        world.channel, world.member, attachments=[("late.png", face_png(), "image/png")]
    )
    turned_away = await late.wait_for_reply(timeout=REPLY_TIMEOUT)
    still_waiting = not stopping.done()
    held.release.set()
    answer = await in_progress.wait_for_reply(timeout=REPLY_TIMEOUT)
    await asyncio.wait_for(stopping, REPLY_TIMEOUT)

    assert still_waiting, "the bot disconnected with a picture in progress"
    assert "restarting" in turned_away.text.lower(), turned_away.text
    assert_answer_names_a_character(answer)
    assert running.bot.is_closed()
    assert running.bot.answering_now == 0


async def test_stopping_does_not_wait_past_its_grace_period(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    running: RunningAnimeBot,
    caplog: pytest.LogCaptureFixture,
) -> None:
    held = HeldDownload(fake_discord, face_png())  # never released
    await held.post(fake_discord, world)

    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="bot.app"):
        await asyncio.wait_for(running.bot.stop_gracefully(grace=0.5), REPLY_TIMEOUT)

    assert time.monotonic() - started < 5.0
    assert running.bot.is_closed()
    assert "stopping with 1 post(s) still unanswered" in caplog.text
    held.release.set()


async def test_stopping_an_idle_bot_disconnects_at_once(running: RunningAnimeBot) -> None:
    started = time.monotonic()
    await asyncio.wait_for(running.bot.stop_gracefully(), REPLY_TIMEOUT)

    assert time.monotonic() - started < 5.0
    assert running.bot.is_closed()


async def test_sigterm_to_the_bot_process_answers_the_picture_in_progress_then_exits_0(
    fake_discord: FakeDiscord, world: StandardGuild, trained_bundle: Path, tmp_path: Path
) -> None:
    data_dir, model_dir = tmp_path / "data", tmp_path / "models"
    database_url = f"sqlite+aiosqlite:///{data_dir / 'animebot.db'}"
    await install_base_model(trained_bundle, database_url, model_dir)
    process = BotProcess(
        "bot",
        tmp_path / "home",
        bot_settings(
            fake_discord, database_url=database_url, model_dir=model_dir, data_dir=data_dir
        ),
    )
    held = HeldDownload(fake_discord, face_png())
    process.start()
    try:
        await process.wait_ready(START_TIMEOUT)
        await watch_every_channel(fake_discord, world)
        in_progress = await held.post(fake_discord, world)

        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        await until(lambda: "SIGTERM received" in process.log_text(), "the bot to see SIGTERM")
        held.release.set()
        answer = await in_progress.wait_for_reply(timeout=REPLY_TIMEOUT)
        exit_code = await wait_exit(process, REPLY_TIMEOUT)
    finally:
        process.stop()

    assert_answer_names_a_character(answer)
    assert exit_code == 0, process.log_tail()
    assert "finishing 1 post(s) in progress" in process.log_text()
    assert process.log_problems() == [], process.log_tail()


async def wait_exit(process: BotProcess, timeout: float) -> int | None:  # noqa: ASYNC109
    """The process's exit code once it has exited by itself; None after ``timeout``."""
    assert process.process is not None
    try:
        return await asyncio.to_thread(process.process.wait, timeout)
    except subprocess.TimeoutExpired:
        return None
