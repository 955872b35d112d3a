"""``/review``: corrections held for a moderator (new accounts, votes against a confident
model), listed, accepted or dismissed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_moderator, server
from bot.errors import BotError
from bot.names import typed_name
from bot.presenters import percent

if TYPE_CHECKING:
    from bot.app import AnimeBot


@is_moderator()
class Review(
    commands.GroupCog, group_name="review", group_description="Corrections held for a moderator"
):
    """What moderators decide about held votes."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    async def _face_in_this_server(self, interaction: discord.Interaction, face: int) -> None:
        stored = await self.bot.storage.images.face(face)
        if stored is None or stored.guild_id != interaction.guild_id:
            raise BotError(f"There is no face {face} in this server.")

    @app_commands.command(name="list", description="Corrections waiting for a moderator")
    async def list(self, interaction: discord.Interaction) -> None:
        """Held corrections, oldest first, with what the model said."""
        held = await self.bot.storage.votes.held(server(interaction))
        if not held:
            await interaction.response.send_message("Nothing is waiting.", ephemeral=True)
            return
        lines = []
        for vote in held:
            model = "no answer"
            if vote.model_label is not None and vote.model_score is not None:
                model = f"model said {vote.model_label} ({percent(vote.model_score)})"
            lines.append(f"face {vote.face_id}: <@{vote.user_id}> says **{vote.label}**; {model}")
        lines.append("Accept with `/review accept face:<id>`, reject with `/review dismiss`.")
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="accept", description="Make a held correction training data")
    @app_commands.describe(face="the face number from /review list", label="the right name")
    async def accept(
        self, interaction: discord.Interaction, face: int, label: str | None = None
    ) -> None:
        """Confirm ``label`` (default: the held vote's label) for ``face``."""
        await self._face_in_this_server(interaction, face)
        if label is None:
            held = {
                v.label
                for v in await self.bot.storage.votes.held(server(interaction), 100)
                if v.face_id == face
            }
            if len(held) != 1:
                raise BotError("Say which name is right: `/review accept face:<id> label:<name>`.")
            label = held.pop()
        outcome = await self.bot.storage.votes.confirm_by_moderator(
            face, typed_name(label), interaction.user.id
        )
        await interaction.response.send_message(
            f"Face {face} is now training data for *{outcome.label}*.", ephemeral=True
        )

    @app_commands.command(name="dismiss", description="Reject the held corrections of a face")
    @app_commands.describe(face="the face number from /review list")
    async def dismiss(self, interaction: discord.Interaction, face: int) -> None:
        """Dismiss every held vote on ``face``."""
        await self._face_in_this_server(interaction, face)
        count = await self.bot.storage.votes.dismiss_held(face)
        await interaction.response.send_message(
            f"Dismissed {count} held correction(s) of face {face}.", ephemeral=True
        )


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Review(bot))
