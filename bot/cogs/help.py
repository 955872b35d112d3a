"""``/help``: what the bot does, how corrections work, and the commands the asker may use.

The list is read from the registered command tree and the asker's permissions, so a new
command shows up by itself and a member never sees a moderator's command.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.i18n import Texts

if TYPE_CHECKING:
    from bot.app import AnimeBot

WHAT_I_DO = (
    "I name anime characters in pictures. Post a picture in a channel I watch, use "
    "`/identify`, or pick **Apps → Identify characters** on a message: I answer with who "
    "each face is, the main face first."
)
CORRECTIONS = (
    "Under each answer, press **✓ right** when I am right, or pick the right name in the "
    "menu (**someone else…** to type one). When enough people agree, or a moderator "
    "confirms, the face becomes training data and the next model learns from it."
)
MAX_FIELD = 1024


def allowed(command: app_commands.AppCommand | object, interaction: discord.Interaction) -> bool:
    """Whether Discord offers ``command`` to the asker here: it works in this kind of place
    and the asker has its default permissions."""
    in_server = interaction.guild_id is not None
    if getattr(command, "guild_only", False) and not in_server:
        return False
    required = getattr(command, "default_permissions", None)
    if required is None:
        return True
    return in_server and required <= interaction.permissions


def command_lines(
    tree: app_commands.CommandTree, interaction: discord.Interaction, texts: Texts
) -> Iterator[str]:
    """``/name — description`` for each slash command the asker may use, then the
    context-menu commands."""
    menus = []
    for command in sorted(tree.get_commands(), key=lambda c: c.name):
        if not allowed(command, interaction):
            continue
        if isinstance(command, app_commands.ContextMenu):
            menus.append(command)
        elif isinstance(command, app_commands.Group):
            for sub in command.commands:
                yield f"`/{command.name} {sub.name}` — {texts(sub.description)}"
        else:
            yield f"`/{command.name}` — {texts(command.description)}"
    for menu in menus:
        yield texts("**Apps → {name}** on a message", name=texts(menu.name))


class Help(commands.Cog):
    """Explains the bot to whoever asks."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="help", description="What I do and the commands you can use")
    async def help(self, interaction: discord.Interaction) -> None:
        """An ephemeral page: what the bot does, corrections, the asker's commands."""
        texts = self.bot.catalog.texts(interaction.locale)
        embed = discord.Embed(
            title=texts("What I do"),
            description=texts(WHAT_I_DO),
            colour=discord.Colour.blurple(),
        )
        embed.add_field(name=texts("Corrections"), value=texts(CORRECTIONS), inline=False)
        lines = list(command_lines(self.bot.tree, interaction, texts))
        for number, chunk in enumerate(chunks(lines, MAX_FIELD)):
            name = texts("Commands you can use") if number == 0 else "\u200b"
            embed.add_field(name=name, value=chunk, inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)


def chunks(lines: list[str], limit: int) -> Iterator[str]:
    """``lines`` joined by newlines into pieces of at most ``limit`` characters."""
    piece = ""
    for line in lines:
        line = line[:limit]
        if piece and len(piece) + 1 + len(line) > limit:
            yield piece
            piece = ""
        piece = f"{piece}\n{line}" if piece else line
    if piece:
        yield piece


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Help(bot))
