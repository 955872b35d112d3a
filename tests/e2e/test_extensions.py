"""The end-to-end bot runs every extension the real one does: a renamed or missing cog fails
the launch instead of silently dropping out of every end-to-end test."""

from __future__ import annotations

import pytest
from discord.ext import commands

import bot.app
from tests.e2e.conftest import Launch, RunningAnimeBot
from tests.fake_discord import StandardGuild


async def test_the_bot_loads_exactly_its_extensions(running: RunningAnimeBot) -> None:
    assert sorted(running.bot.extensions) == sorted(bot.app.EXTENSIONS)


async def test_an_extension_that_cannot_be_found_stops_the_launch(
    launch: Launch, world: StandardGuild, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bot.app, "EXTENSIONS", (*bot.app.EXTENSIONS, "bot.cogs.renamed_away"))

    with pytest.raises(commands.ExtensionNotFound, match=r"bot\.cogs\.renamed_away"):
        await launch()
