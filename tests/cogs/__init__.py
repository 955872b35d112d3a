"""Cog tests, and the spec'd fakes of discord.py objects they share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import discord
from discord import app_commands
from discord.ext import commands

from bot.app import AnimeBot
from bot.config import Settings
from bot.fetch import ImageFetcher
from bot.health import Metrics
from bot.i18n import Catalog
from bot.model_store import ModelStore
from bot.service import RecognitionService
from bot.storage.db import Storage
from bot.training import TrainingManager
from bot.voting import Voting

GUILD = 1000
OLD_ACCOUNT = datetime(2020, 1, 1, tzinfo=UTC)


def fake_bot(storage: Storage, model_dir: Path) -> AnimeBot:
    """An ``AnimeBot`` spec'd from the real class, with a real storage and model store."""
    bot = create_autospec(AnimeBot, instance=True)
    bot.storage = storage
    bot.settings = Settings(model_dir=model_dir, database_url="sqlite://")
    bot.models = ModelStore(storage, model_dir)
    bot.metrics = Metrics()
    bot.training = TrainingManager(storage, bot.models, bot.settings, instance="test:1")
    bot.voting = Voting(storage)
    bot.catalog = Catalog.load()
    bot.accepting = True
    bot.recognition = create_autospec(RecognitionService, instance=True)
    bot.fetcher = create_autospec(ImageFetcher, instance=True)
    return bot


def fake_interaction(
    *,
    user_id: int = 42,
    guild_id: int | None = GUILD,
    permissions: discord.Permissions | None = None,
    created_at: datetime = OLD_ACCOUNT,
) -> discord.Interaction:
    """An interaction spec'd from ``discord.Interaction``; its response is not yet done."""
    interaction = create_autospec(discord.Interaction, instance=True)
    user = create_autospec(discord.Member, instance=True)
    user.id = user_id
    user.created_at = created_at
    user.mention = f"<@{user_id}>"
    interaction.user = user
    interaction.guild_id = guild_id
    interaction.created_at = datetime.now(UTC)  # cooldowns read it
    interaction.guild = None if guild_id is None else create_autospec(discord.Guild, instance=True)
    if interaction.guild is not None:
        interaction.guild.filesize_limit = 10 * 1024 * 1024
    interaction.permissions = permissions or discord.Permissions.none()
    interaction.response = create_autospec(discord.InteractionResponse, instance=True)
    interaction.response.is_done.return_value = False
    interaction.followup = create_autospec(discord.Webhook, instance=True)
    return interaction


def sent_text(interaction: discord.Interaction) -> str:
    """The text of the (single) ephemeral reply sent through the response or the followup."""
    methods: list[Any] = [interaction.response.send_message, interaction.followup.send]
    for method in methods:
        if method.await_count:
            call = method.await_args
            assert call.kwargs.get("ephemeral") is True, "replies must be ephemeral"
            if call.args:
                return str(call.args[0])
            embed = call.kwargs.get("embed")
            return embed.description or embed.title if embed else ""
    raise AssertionError("nothing was sent")


def command_of(cog: commands.Cog, name: str) -> app_commands.Command:
    """The cog's slash command called ``name`` (``"settings show"`` for a subcommand)."""
    for command in cog.walk_app_commands():
        if isinstance(command, app_commands.Command) and command.qualified_name == name:
            return command
    raise AssertionError(f"{type(cog).__name__} has no command /{name}")


async def invoke(cog: commands.Cog, name: str, *args: Any) -> None:
    """Run the command's body as discord.py would after its checks passed."""
    callback: Any = command_of(cog, name).callback
    await callback(cog, *args)
