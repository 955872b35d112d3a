"""The one place errors meet users: short, specific messages; tracebacks only in the log."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import NotOwnerError
from bot.errors import BotError
from bot.presenters import error_embed

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

STALE_COMMAND = (
    "I don't have that command (any more). Discord updates your list of commands within a "
    "minute; reload Discord (Ctrl+R) to get it now."
)
EXPECTED = (app_commands.CommandNotFound, app_commands.CommandSignatureMismatch)


def describe(error: app_commands.AppCommandError) -> str | None:
    """The user-facing sentence for an expected error, or None for a bug."""
    original = getattr(error, "original", error)
    if isinstance(original, BotError):
        return original.user_message
    if isinstance(error, app_commands.NoPrivateMessage):
        return "That command only works in a server."
    if isinstance(error, app_commands.MissingPermissions):
        names = [
            p.replace("_", " ").replace("guild", "server").title()
            for p in error.missing_permissions
        ]
        return f"You need the {' and '.join(names) or 'right'} permission for that."
    if isinstance(error, app_commands.CommandOnCooldown):  # a CheckFailure too
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, NotOwnerError):
        return "Only the bot's owners can do that."
    if isinstance(error, app_commands.CheckFailure):
        return "You are not allowed to use that command here."
    if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
        return STALE_COMMAND
    if isinstance(error, app_commands.TransformerError):
        return f"I could not read “{error.value}” as a {error.type.name.lower()}."
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
        message = describe(error)
        if isinstance(error, EXPECTED):
            log.info("%s from %s: %s", type(error).__name__, interaction.user.id, error)
        if message is None:
            log.error(
                "command %s failed",
                interaction.command and interaction.command.name,
                exc_info=error,
            )
            message = "Something went wrong on my side; it has been logged."
        embed = error_embed(message)
        if interaction.response.is_done():
            await interaction.followup.send(embed=embed, ephemeral=True)
        else:
            await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Errors(bot))
