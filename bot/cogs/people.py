"""Personal data: ``/forgetme`` for anyone, ``/contributions`` and ``/purge`` for moderators."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_moderator, server
from bot.storage.users import UserData

if TYPE_CHECKING:
    from bot.app import AnimeBot


def describe_user_data(data: UserData) -> str:
    """``3 votes (1 held), 2 training examples, 4 pictures``."""
    return (
        f"{data.votes} votes ({data.held_votes} held), "
        f"{data.examples} training examples, {data.images} pictures"
    )


class People(commands.Cog):
    """What is stored about a person: shown, and removed."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="forgetme", description="Delete your votes and contributions")
    async def forgetme(self, interaction: discord.Interaction) -> None:
        """Delete everything stored about the caller, in every server."""
        removed = await self.bot.storage.users.forget_user(interaction.user.id)
        await interaction.response.send_message(
            f"Deleted: {describe_user_data(removed)}.", ephemeral=True
        )

    @app_commands.command(name="contributions", description="What a member contributed here")
    @app_commands.describe(user="the member whose contributions to list")
    @is_moderator()
    async def contributions(self, interaction: discord.Interaction, user: discord.User) -> None:
        """A member's votes, held votes, examples and pictures in this server."""
        data = await self.bot.storage.users.contributions(user.id, server(interaction))
        await interaction.response.send_message(
            f"{user.mention}: {describe_user_data(data)}.", ephemeral=True
        )

    @app_commands.command(name="purge", description="Remove a member's training contributions")
    @app_commands.describe(user="the member whose votes and examples to remove")
    @is_moderator()
    async def purge(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Delete a member's votes and the examples they made in this server."""
        removed = await self.bot.storage.users.purge_user(user.id, server(interaction))
        await interaction.response.send_message(
            f"Removed from {user.mention}: {describe_user_data(removed)}.", ephemeral=True
        )


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(People(bot))
