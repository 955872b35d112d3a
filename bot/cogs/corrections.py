"""Correction controls under each answer: routes clicks on any answer's "who is it?" menus
and "✓ right" buttons (see ``bot.views``), including answers sent before a restart."""

from __future__ import annotations

from typing import TYPE_CHECKING

from discord.ext import commands

from bot.views import CORRECTION_CONTROLS

if TYPE_CHECKING:
    from bot.app import AnimeBot


class Corrections(commands.Cog):
    """Turns clicks under answers into votes."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        """Route clicks on any answer's controls, including answers from before a restart."""
        self.bot.add_dynamic_items(*CORRECTION_CONTROLS)

    async def cog_unload(self) -> None:
        """Stop routing clicks."""
        self.bot.remove_dynamic_items(*CORRECTION_CONTROLS)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Corrections(bot))
