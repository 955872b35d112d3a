"""The bot token appears in no log line, no message to users, no ``/metrics`` text and no repr.

The real bot runs against the fake Discord with a distinctive token; it answers a picture,
refuses a bad one, serves ``/metrics``, and fails unexpectedly inside a command. Everything
logged (DEBUG and up, every logger, tracebacks included), everything it sent to Discord and
everything its HTTP endpoint served is then searched for the token.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.app import start_health_endpoint
from bot.config import Settings
from tests.e2e.bundle import face_png
from tests.e2e.conftest import Launch, RunningAnimeBot, launch, world
from tests.fake_discord import FakeDiscord, StandardGuild
from tests.hostile import tiny_bundle

__all__ = ["launch", "world"]  # fixtures of the end-to-end tests, used here

pytestmark = pytest.mark.usefixtures("discord_error_log")

TOKEN = "MTE5ODc2NTQzMjEwOTg3NjU0.GsEcRt.tHiS-iS-a-TeSt-ToKeN-nEvEr-LoG-iT-0123456789ab"
SECRET_PART = TOKEN.rsplit(".", 1)[1]
"""The signature: a leak of this part alone is a leak."""
LOG_FORMAT = logging.Formatter("%(name)s %(levelname)s %(message)s")


@pytest.fixture
def fake_discord_options() -> dict[str, Any]:
    """The fake Discord accepts only the distinctive token."""
    return {"heartbeat_interval": 1.0, "token": TOKEN}


def leaks(texts: Iterable[str]) -> list[str]:
    """The texts that contain the token or its secret part (shortened, for the message)."""
    return [text[:300] for text in texts if TOKEN in text or SECRET_PART in text]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def what_discord_received(fake: FakeDiscord) -> list[str]:
    """Every message, edit, interaction callback and REST call the bot made, as text."""
    texts = []
    for message in fake.bot_messages:
        texts.append(json.dumps([message.data, message.request, message.edits], default=str))
        texts += [f.content.decode("latin-1") for f in message.files]
    texts += [json.dumps([c.type, c.data], default=str) for c in fake.callbacks]
    texts += [json.dumps([c.method, c.path, c.query, c.body], default=str) for c in fake.requests]
    return texts


async def exercise(
    fake: FakeDiscord, world: StandardGuild, running: RunningAnimeBot, monkeypatch: Any
) -> list[str]:
    """A picture answer, an error reply, /metrics, and an unexpected failure in /stats;
    what the health endpoint served."""
    answer = await fake.post_message(
        world.channel, world.member, attachments=[("face.png", face_png(), "image/png")]
    )
    assert "%" in (await answer.wait_for_reply()).text
    refused = await fake.post_message(
        world.channel, world.member, attachments=[("notes.png", b"not a picture\n", "image/png")]
    )
    assert "Not a picture" in (await refused.wait_for_reply()).text

    async def broken_collect(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the statistics query broke")

    monkeypatch.setattr(running.storage.stats, "collect", broken_collect)
    stats = await fake.send_slash_command("stats", user=world.admin, channel=world.channel)
    assert "went wrong on my side" in (await stats.wait_for_message()).text

    served = []
    bot = running.bot
    bot.settings = bot.settings.model_copy(update={"http_port": free_port()})
    async with AsyncExitStack() as stack:
        await start_health_endpoint(bot, stack)
        async with aiohttp.ClientSession() as session:
            for path in ("/metrics", "/healthz"):
                url = f"http://127.0.0.1:{bot.settings.http_port}{path}"
                async with session.get(url) as response:
                    served.append(await response.text())
    assert "animebot_images_total" in served[0]
    return served


async def test_the_token_appears_in_no_log_message_or_metrics(
    fake_discord: FakeDiscord,
    world: StandardGuild,
    launch: Launch,
    tmp_path_factory: pytest.TempPathFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    running = await launch(bundle=tiny_bundle(tmp_path_factory))

    served = await exercise(fake_discord, world, running, monkeypatch)

    logged = [LOG_FORMAT.format(record) for record in caplog.records]
    # The capture is real: discord.py's debug lines and the failure's traceback are in it.
    assert any(r.name.startswith("discord.") and r.levelno == logging.DEBUG for r in caplog.records)
    assert any("RuntimeError: the statistics query broke" in line for line in logged)
    assert leaks(logged) == []
    assert leaks(what_discord_received(fake_discord)) == []
    assert leaks(served) == []


def test_settings_repr_hides_the_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = Settings(discord_token=TOKEN, data_dir=tmp_path)
    monkeypatch.setenv("DISCORD_TOKEN", TOKEN)
    read = Settings.from_env(())

    assert read.discord_token == TOKEN
    assert leaks([repr(built), str(built), repr(read)]) == []
