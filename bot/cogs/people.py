"""Personal data: ``/forgetme`` for anyone, ``/contributions`` and ``/purge`` for moderators."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_moderator, server
from bot.phrases import Phrase, phrase
from bot.storage.users import UserData

if TYPE_CHECKING:
    from bot.app import AnimeBot


def describe_user_data(data: UserData) -> Phrase:
    """``3 vote(s) (1 held), 2 training example(s), 4 picture(s)``."""
    return phrase(
        "{votes} vote(s) ({held} held), {examples} training example(s), {pictures} picture(s)",
        votes=data.votes,
        held=data.held_votes,
        examples=data.examples,
        pictures=data.images,
    )


class People(commands.Cog):
    """What is stored about a person: shown, and removed."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="forgetme", description="Delete your votes and contributions")
    async def forgetme(self, interaction: discord.Interaction) -> None:
        """Delete everything stored about the caller, in every server."""
        removed = await self.bot.storage.users.forget_user(interaction.user.id)
        texts = self.bot.catalog.texts(interaction.locale)
        await interaction.response.send_message(
            texts("Deleted: {data}.", data=describe_user_data(removed)), ephemeral=True
        )

    @app_commands.command(name="contributions", description="What a member contributed here")
    @app_commands.describe(user="the member whose contributions to list")
    @is_moderator()
    async def contributions(self, interaction: discord.Interaction, user: discord.User) -> None:
        """A member's votes, held votes, examples and pictures in this server."""
        data = await self.bot.storage.users.contributions(user.id, server(interaction))
        texts = self.bot.catalog.texts(interaction.locale)
        await interaction.response.send_message(
            texts("{user}: {data}.", user=user.mention, data=describe_user_data(data)),
            ephemeral=True,
        )

    @app_commands.command(name="purge", description="Remove a member's training contributions")
    @app_commands.describe(user="the member whose votes and examples to remove")
    @is_moderator()
    async def purge(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Delete a member's votes and the examples they made in this server."""
        removed = await self.bot.storage.users.purge_user(user.id, server(interaction))
        texts = self.bot.catalog.texts(interaction.locale)
        await interaction.response.send_message(
            texts(
                "Removed from {user}: {data}.", user=user.mention, data=describe_user_data(removed)
            ),
            ephemeral=True,
        )


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(People(bot))
