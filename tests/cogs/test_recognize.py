"""The recognize cog's cached per-server settings."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.cogs import recognize
from bot.cogs.recognize import Recognize
from bot.errors import StorageError
from bot.storage.db import Storage
from bot.storage.guilds import GuildConfig
from tests.cogs import GUILD, fake_bot


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Recognize:
    return Recognize(fake_bot(storage, tmp_path / "models"))


async def test_settings_are_read_once_within_the_ttl(cog: Recognize, storage: Storage) -> None:
    assert (await cog.guild_config(GUILD)).labels_shown == 3
    await storage.guilds.update(GUILD, labels_shown=5)  # as another process would

    assert (await cog.guild_config(GUILD)).labels_shown == 3


async def test_a_settings_command_here_takes_effect_at_once(
    cog: Recognize, storage: Storage
) -> None:
    await cog.guild_config(GUILD)
    await storage.guilds.update(GUILD, labels_shown=5)

    await cog.on_guild_settings_changed(GUILD)

    assert (await cog.guild_config(GUILD)).labels_shown == 5


async def test_settings_changed_elsewhere_are_seen_after_the_ttl(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await cog.guild_config(GUILD)
    await storage.guilds.update(GUILD, labels_shown=5)
    monkeypatch.setattr(recognize, "SETTINGS_TTL", 0.0)

    assert (await cog.guild_config(GUILD)).labels_shown == 5


class CountingReads:
    """Counts the settings reads that reach the real repository (a spy, not a fake)."""

    def __init__(self, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        real = storage.guilds.get

        async def get(guild_id: int) -> GuildConfig:
            self.calls += 1
            await self.gate.wait()
            return await real(guild_id)

        monkeypatch.setattr(storage.guilds, "get", get)


async def test_posts_arriving_together_share_one_settings_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.guilds.update(GUILD, labels_shown=4)
    reads = CountingReads(storage, monkeypatch)
    reads.gate.clear()

    waiting = [asyncio.create_task(cog.guild_config(GUILD)) for _ in range(50)]
    await asyncio.sleep(0.05)
    reads.gate.set()
    configs = await asyncio.gather(*waiting)

    assert reads.calls == 1
    assert {c.labels_shown for c in configs} == {4}


async def test_one_waiter_giving_up_does_not_cancel_the_shared_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.guilds.update(GUILD, labels_shown=4)
    reads = CountingReads(storage, monkeypatch)
    reads.gate.clear()
    first = asyncio.create_task(cog.guild_config(GUILD))
    second = asyncio.create_task(cog.guild_config(GUILD))
    await asyncio.sleep(0.05)

    first.cancel()
    reads.gate.set()

    assert (await second).labels_shown == 4
    assert first.cancelled()
    assert reads.calls == 1


async def test_a_change_during_a_read_is_not_overwritten_by_that_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = CountingReads(storage, monkeypatch)
    reads.gate.clear()
    stale = asyncio.create_task(cog.guild_config(GUILD))
    await asyncio.sleep(0.05)
    # The read has started (and will see the old settings); a settings command now runs.
    await storage.guilds.update(GUILD, labels_shown=5)
    monkeypatch.setattr(recognize, "SETTINGS_TTL", 3600.0)
    await cog.on_guild_settings_changed(GUILD)
    reads.gate.set()
    await stale

    assert (await cog.guild_config(GUILD)).labels_shown == 5
    assert reads.calls == 2


async def test_the_database_down_gives_the_last_settings_read(
    cog: Recognize, storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    await storage.guilds.update(GUILD, labels_shown=4)
    assert (await cog.guild_config(GUILD)).labels_shown == 4
    monkeypatch.setattr(recognize, "SETTINGS_TTL", 0.0)

    async def down(guild_id: int) -> GuildConfig:
        raise StorageError("The database is not available right now")

    monkeypatch.setattr(storage.guilds, "get", down)

    assert (await cog.guild_config(GUILD)).labels_shown == 4
    assert (await cog.guild_config(GUILD + 1)).labels_shown == 3  # never read: the defaults
