"""The one place errors meet users: short, specific messages; tracebacks only in the log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import NotOwnerError
from bot.errors import BotError
from bot.i18n import ENGLISH, Texts
from bot.presenters import error_embed

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

STALE_COMMAND = (
    "I don't have that command (any more). Discord updates your list of commands within a "
    "minute; reload Discord (Ctrl+R) to get it now."
)
UNEXPECTED = "Something went wrong on my side; it has been logged."
EXPECTED = (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)


PERMISSION_NAMES = {
    "manage_guild": "Manage Server",
    "manage_messages": "Manage Messages",
    "administrator": "Administrator",
}
"""Permissions as Discord's own settings name them (others: from their attribute name)."""


def describe(error: app_commands.AppCommandError, texts: Texts = ENGLISH) -> str | None:
    """The user-facing sentence for an expected error in ``texts``' language, or None for a
    bug."""
    original = getattr(error, "original", error)
    if isinstance(original, BotError):
        return texts(original.phrase)
    if isinstance(error, app_commands.NoPrivateMessage):
        return texts("That command only works in a server.")
    if isinstance(error, app_commands.MissingPermissions):
        names = [
            texts(PERMISSION_NAMES.get(p, p.replace("_", " ").title()))
            for p in error.missing_permissions
        ]
        if not names:
            return texts("You need another permission for that.")
        return texts("You need the {permission} permission for that.", permission=" + ".join(names))
    if isinstance(error, app_commands.CommandOnCooldown):  # a CheckFailure too
        return texts("Slow down: try again in {seconds} s.", seconds=round(error.retry_after))
    if isinstance(error, NotOwnerError):
        return texts("Only the bot's owners can do that.")
    if isinstance(error, app_commands.CheckFailure):
        return texts("You are not allowed to use that command here.")
    if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        return texts(STALE_COMMAND)
    if isinstance(error, app_commands.TransformerError):
        return texts("I could not read “{value}” there.", value=error.value)
    return None


class Errors(commands.Cog):
    """Answers failed slash commands."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot
        self._previous_handler = bot.tree.on_error
        bot.tree.error(self.on_app_command_error)

    async def cog_unload(self) -> None:
        """Give the tree its previous handler back."""
        self.bot.tree.error(self._previous_handler)

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Tell the user what went wrong; log the unexpected with its traceback."""
        texts = self.bot.catalog.texts(interaction.locale)
        message = describe(error, texts)
        if isinstance(error, EXPECTED):
            log.info("%s from %s: %s", type(error).__name__, interaction.user.id, error)
        if message is None:
            log.error(
                "command %s failed",
                interaction.command and interaction.command.name,
                exc_info=error,
            )
            message = texts(UNEXPECTED)
        embed = error_embed(message)
        if interaction.response.is_done():
            await interaction.followup.send(embed=embed, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Errors(bot))
