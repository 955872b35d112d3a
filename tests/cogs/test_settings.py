"""/settings."""

from __future__ import annotations

from pathlib import Path

import discord
import pytest

from bot.cogs.settings import Settings
from bot.storage.db import Storage
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke, sent_text


@pytest.fixture
def cog(storage: Storage, tmp_path: Path) -> Settings:
    return Settings(fake_bot(storage, tmp_path / "models"))


async def test_settings_change_votes_needed(cog: Settings, storage: Storage) -> None:
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))

    await invoke(cog, "settings votes_needed", interaction, 3)

    assert (await storage.guilds.get(GUILD)).votes_needed == 3
    assert sent_text(interaction) == "Changed."
    cog.bot.dispatch.assert_called_with("guild_settings_changed", GUILD)  # type: ignore[attr-defined]
