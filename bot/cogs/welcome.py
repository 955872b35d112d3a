"""Tells a server's owner, once and privately, how to start when pictures are posted but the
bot cannot answer them yet: it has no model, or no channel is watched."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.cogs.recognize import picture_urls
from bot.errors import BotError
from bot.i18n import Texts

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

GREETING = "Hello! I'm in **{server}**, but I don't answer pictures there yet."
TEACH = (
    "• I have no model yet: whoever runs the bot installs a base model "
    "(`python -m bot install-base`, see the README). Then teach me your own characters with "
    "`/teach character:<name> image:<picture>` and run `/retrain` for a model of your own."
)
WATCH = (
    "• Choose where I answer pictures: `/settings watch channel:<channel>`, or "
    "`/settings watch_all enabled:True` for every channel."
)
MORE = "`/help` in the server lists everything. I won't send this again."


def welcome_text(server: str, *, no_model: bool, no_channel: bool, texts: Texts) -> str:
    """What the owner reads: only the steps still missing."""
    lines = [texts(GREETING, server=server)]
    if no_model:
        lines.append(texts(TEACH))
    if no_channel:
        lines.append(texts(WATCH))
    lines.append(texts(MORE))
    return "\n".join(lines)


class Welcome(commands.Cog):
    """Watches for the first pictures a server posts before the bot is set up there."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot
        self._settled: set[int] = set()
        """Servers this process looked at: set up, or their owner told (by any process)."""

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """On a server's first picture, tell its owner what is missing (once, across
        processes and restarts)."""
        guild = message.guild
        if guild is None or message.author.bot or guild.id in self._settled:
            return
        if not picture_urls(message):
            return
        try:
            config = await self.bot.storage.guilds.get(guild.id)
            no_model = await self.bot.models.serving(guild.id) is None
            no_channel = not (config.watch_all or config.watched_channels)
            if (no_model or no_channel) and await self.bot.storage.guilds.welcome_once(guild.id):
                texts = self.bot.catalog.texts(guild.preferred_locale)
                text = welcome_text(
                    guild.name, no_model=no_model, no_channel=no_channel, texts=texts
                )
                await self._tell_owner(guild, text)
        except BotError as exc:
            log.warning("could not check whether server %s was welcomed: %s", guild.id, exc)
            return
        self._settled.add(guild.id)

    async def _tell_owner(self, guild: discord.Guild, text: str) -> None:
        if guild.owner_id is None:
            return
        try:
            channel = await self.bot.create_dm(discord.Object(guild.owner_id))
            await channel.send(text)
        except discord.HTTPException as exc:
            log.info("could not tell the owner of server %s how to start: %s", guild.id, exc)
        else:
            log.info("told the owner of server %s how to start", guild.id)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Welcome(bot))
