"""``/review``: corrections held for a moderator (new accounts, votes against a confident
model), listed, accepted or dismissed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_moderator, server
from bot.cogs.choices import character_choices
from bot.errors import BotError
from bot.names import character_name, typed_name
from bot.review_pages import ReviewView, accepted, dismissed, review_page

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
        if await self.bot.storage.images.face(face, server(interaction)) is None:
            raise BotError("There is no face {face} in this server.", face=face)

    @app_commands.command(name="list", description="Corrections waiting for a moderator")
    async def list_held(self, interaction: discord.Interaction) -> None:
        """Held corrections, the longest-waiting first, a page of faces at a time, each with
        its crop, a link to its message and accept/dismiss buttons."""
        guild_id = server(interaction)
        texts = self.bot.catalog.texts(interaction.locale)
        page = await review_page(self.bot, guild_id, 0, texts)
        if page is None:
            await interaction.response.send_message(texts("Nothing is waiting."), ephemeral=True)
            return
        view = ReviewView(guild_id, interaction.user.id, page)
        await interaction.response.send_message(
            embeds=page.embeds, files=page.files(), view=view, ephemeral=True
        )

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
            face, server(interaction), typed_name(label), interaction.user.id
        )
        self.bot.dispatch("guild_characters_changed", server(interaction))
        texts = self.bot.catalog.texts(interaction.locale)
        await interaction.response.send_message(
            texts(accepted(face, character_name(outcome.name))), ephemeral=True
        )

    @accept.autocomplete("label")
    async def accept_label(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """This server's characters whose name or alias contains what was typed."""
        return await character_choices(self.bot, interaction, current, with_base=True)

    @app_commands.command(name="dismiss", description="Reject the held corrections of a face")
    @app_commands.describe(face="the face number from /review list")
    async def dismiss(self, interaction: discord.Interaction, face: int) -> None:
        """Dismiss every held vote on ``face``."""
        await self._face_in_this_server(interaction, face)
        count = await self.bot.storage.votes.dismiss_held(face, server(interaction))
        texts = self.bot.catalog.texts(interaction.locale)
        await interaction.response.send_message(texts(dismissed(face, count)), ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Review(bot))
