"""Autocomplete for options that name a character: only the asking server's characters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import StorageError
from bot.storage.scope import Scope

if TYPE_CHECKING:
    from bot.app import AnimeBot

MAX_CHOICES = 25  # Discord's limit


async def character_choices(
    bot: AnimeBot, interaction: discord.Interaction, current: str, *, include_hidden: bool = False
) -> list[app_commands.Choice[str]]:
    """This server's characters whose name or alias contains ``current`` (none in a DM, or
    while the database is unavailable: autocomplete must answer within 3 s, quietly)."""
    if interaction.guild_id is None:
        return []
    try:
        names = await bot.storage.characters.search(
            Scope.of_guild(interaction.guild_id),
            current,
            MAX_CHOICES,
            include_hidden=include_hidden,
        )
    except StorageError:
        return []
    return [app_commands.Choice(name=name, value=name) for name in names]
