"""The recognize cog's cached per-server settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.cogs import recognize
from bot.cogs.recognize import Recognize
from bot.storage.db import Storage
from tests.cogs import GUILD, fake_bot


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    async with Storage.open(f"sqlite+aiosqlite:///{tmp_path}/t.db") as opened:
        yield opened


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
