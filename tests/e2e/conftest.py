"""The real bot (``AnimeBot``) against the fake Discord, built piece by piece as ``serve`` does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from bot.app import AnimeBot, build_bot
from bot.config import Settings
from bot.fetch import FetchPolicy
from bot.model_store import ModelStore
from bot.service import RecognitionService
from bot.storage.db import Storage
from tests.e2e.bundle import install_base_model, train_bundle
from tests.fake_discord import FAST_GUILD_READY_TIMEOUT, FakeDiscord, StandardGuild, running_bot

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})


@dataclass
class RunningAnimeBot:
    """A connected bot and the services it was given."""

    bot: AnimeBot
    storage: Storage
    models: ModelStore
    recognition: RecognitionService

    async def count(self, table: Any) -> int:
        """Rows in ``table`` (an ORM class from ``bot.storage.schema``)."""
        async with self.storage.engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(table)) or 0)

    async def rows(self, *columns: Any) -> list[tuple[Any, ...]]:
        """``SELECT columns`` from their table, in insertion order."""
        async with self.storage.engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(select(*columns))]


Launch = Callable[..., Awaitable[RunningAnimeBot]]


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small bundle per test session (about 10 s of training in a subprocess)."""
    return train_bundle(tmp_path_factory.mktemp("e2e-bundle"))


@pytest.fixture
def world(fake_discord: FakeDiscord) -> StandardGuild:
    """A guild with #general, an admin (Manage Server) and a member."""
    return fake_discord.add_standard_guild()


@pytest_asyncio.fixture
async def launch(fake_discord: FakeDiscord, tmp_path: Path) -> AsyncIterator[Launch]:
    """Start bots against the fake, each with every extension in ``bot.app.EXTENSIONS`` (one
    that cannot be loaded fails the test); each is closed, with its services, at teardown.
    Unless ``watch_all=False``, every server it joined has it watch every channel."""
    async with AsyncExitStack() as stack:

        async def start(
            *,
            name: str = "bot",
            bundle: Path | None = None,
            database_url: str | None = None,
            model_dir: Path | None = None,
            shard: tuple[int, int] | None = None,
            watch_all: bool = True,
        ) -> RunningAnimeBot:
            data_dir = tmp_path / name
            settings = Settings(
                discord_token=fake_discord.token,
                data_dir=data_dir,
                database_url=database_url or f"sqlite+aiosqlite:///{data_dir / 'animebot.db'}",
                model_dir=model_dir or data_dir / "models",
                http_port=0,
                shard_count=shard[1] if shard else None,
                shard_ids=(shard[0],) if shard else None,
                workers=2,
                queue_size=4,
            )
            if bundle is not None:
                await install_base_model(bundle, settings.database_url, settings.model_dir)
            anime_bot = await build_bot(
                settings,
                stack,
                policy=FetchPolicy(allow_private_addresses=True, allowed_hosts=LOCAL_HOSTS),
                guild_ready_timeout=FAST_GUILD_READY_TIMEOUT,
            )
            await stack.enter_async_context(running_bot(anime_bot, fake_discord))
            if watch_all:  # as an admin's `/settings watch_all enabled:True` would
                for guild in anime_bot.guilds:
                    await anime_bot.storage.guilds.update(guild.id, watch_all=True)
            return RunningAnimeBot(
                anime_bot, anime_bot.storage, anime_bot.models, anime_bot.recognition
            )

        yield start


@pytest_asyncio.fixture
async def running(launch: Launch, world: StandardGuild, trained_bundle: Path) -> RunningAnimeBot:
    """The bot with the trained bundle serving, connected to the standard guild."""
    return await launch(bundle=trained_bundle)
