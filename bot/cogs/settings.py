"""``/settings``: how the bot behaves in a server (watched channels, labels shown, votes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_manager, server
from bot.phrases import Phrase, phrase

if TYPE_CHECKING:
    from bot.app import AnimeBot

MAX_LABELS_SETTING = 10
MAX_VOTES_SETTING = 10


@is_manager()
class Settings(
    commands.GroupCog,
    group_name="settings",
    group_description="Show or change how the bot behaves in this server",
):
    """Reads and changes a server's settings; the recognize cog is told of every change."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="show", description="Show this server's settings")
    async def show(self, interaction: discord.Interaction) -> None:
        """The current settings."""
        await self._show(interaction, None)

    @app_commands.command(name="watch", description="Answer pictures in a channel unasked")
    @app_commands.describe(channel="the channel whose pictures I answer")
    async def watch(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Add a watched channel."""
        guild_id = server(interaction)
        await self.bot.storage.guilds.watch(guild_id, channel.id)
        await self._changed(interaction, phrase("Now watching {channel}.", channel=channel.mention))

    @app_commands.command(name="unwatch", description="Stop answering pictures in a channel")
    @app_commands.describe(channel="the channel I stop watching")
    async def unwatch(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Remove a watched channel."""
        guild_id = server(interaction)
        removed = await self.bot.storage.guilds.unwatch(guild_id, channel.id)
        change = phrase(
            "Stopped watching {channel}." if removed else "{channel} was not watched.",
            channel=channel.mention,
        )
        await self._changed(interaction, change)

    @app_commands.command(name="watch_all", description="Answer pictures in every channel")
    @app_commands.describe(enabled="on: every channel; off: only the channels named with watch")
    async def watch_all(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Watch every channel (or go back to the named ones)."""
        guild_id = server(interaction)
        await self.bot.storage.guilds.update(guild_id, watch_all=enabled)
        await self._changed(interaction, phrase("Changed."))

    @app_commands.command(name="labels_shown", description="How many labels to show per face")
    @app_commands.describe(count="the answer and up to this many minus one close runners-up")
    async def labels_shown(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, MAX_LABELS_SETTING],
    ) -> None:
        """Set the number of labels shown per face."""
        guild_id = server(interaction)
        await self.bot.storage.guilds.update(guild_id, labels_shown=count)
        await self._changed(interaction, phrase("Changed."))

    @app_commands.command(name="auto_reply", description="Answer pictures without being asked")
    @app_commands.describe(enabled="on: answer pictures in watched channels; off: only /identify")
    async def auto_reply(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Switch automatic answers on or off."""
        guild_id = server(interaction)
        await self.bot.storage.guilds.update(guild_id, auto_reply=enabled)
        await self._changed(interaction, phrase("Changed."))

    @app_commands.command(
        name="votes_needed", description="How many people must agree on a correction"
    )
    @app_commands.describe(count="people who must agree before a correction becomes training data")
    async def votes_needed(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, MAX_VOTES_SETTING],
    ) -> None:
        """Set the number of agreeing votes that makes training data."""
        guild_id = server(interaction)
        await self.bot.storage.guilds.update(guild_id, votes_needed=count)
        await self._changed(interaction, phrase("Changed."))

    async def _changed(self, interaction: discord.Interaction, change: str | Phrase) -> None:
        """Tell the bot the settings changed (cached ones are dropped), then show them."""
        self.bot.dispatch("guild_settings_changed", server(interaction))
        await self._show(interaction, change)

    async def _show(self, interaction: discord.Interaction, change: str | Phrase | None) -> None:
        """The settings in an embed, in the reader's language; ``change`` (which may mention
        channels: mentions render in descriptions and field values, never in titles) above
        them."""
        texts = self.bot.catalog.texts(interaction.locale)
        config = await self.bot.storage.guilds.get(server(interaction))
        if config.watch_all:
            channels = texts("every channel")
        else:
            channels = ", ".join(f"<#{c}>" for c in sorted(config.watched_channels)) or texts(
                "none yet: name one with `/settings watch`"
            )
        embed = discord.Embed(
            title=texts("Settings"),
            description=None if change is None else texts(change),
            colour=discord.Colour.blurple(),
        )
        embed.add_field(name=texts("Auto-reply"), value=texts("on" if config.auto_reply else "off"))
        embed.add_field(name=texts("Watched channels"), value=channels)
        embed.add_field(name=texts("Labels shown"), value=str(config.labels_shown))
        embed.add_field(name=texts("Votes needed"), value=str(config.votes_needed))
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Settings(bot))
