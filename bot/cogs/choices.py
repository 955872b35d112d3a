"""Autocomplete for options that name a character: the asking server's characters (and, for
labels, the base model's)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands

from bot.errors import StorageError
from bot.names import character_name
from bot.storage.scope import Scope

if TYPE_CHECKING:
    from bot.app import AnimeBot

MAX_CHOICES = 25  # Discord's limit


async def character_choices(
    bot: AnimeBot,
    interaction: discord.Interaction,
    current: str,
    *,
    include_hidden: bool = False,
    with_base: bool = False,
) -> list[app_commands.Choice[str]]:
    """This server's characters whose name or alias contains ``current`` (none in a DM, or
    while the database is unavailable: autocomplete must answer within 3 s, quietly); with
    ``with_base``, the base model's characters too (a label may name one of them)."""
    if interaction.guild_id is None:
        return []
    scope = Scope.of_guild(interaction.guild_id)
    characters = bot.storage.characters
    try:
        if with_base:
            names = await characters.search_visible(scope, current, MAX_CHOICES)
        else:
            names = await characters.search(
                scope, current, MAX_CHOICES, include_hidden=include_hidden
            )
    except StorageError:
        return []
    return [app_commands.Choice(name=character_name(name), value=name) for name in names]
