"""A server's training data: ``/teach`` adds to it, ``/export`` downloads it, ``/stats``
counts it."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_manager, is_moderator
from bot.errors import BotError, NoModelError
from bot.names import typed_name
from bot.presenters import percent
from bot.vision.crop import CropSettings, context_crop
from bot.vision.decode import decode_image
from bot.vision.faces import default_face_finder

if TYPE_CHECKING:
    from pathlib import Path

    from bot.app import AnimeBot

DEFAULT_UPLOAD_LIMIT = 25 * 1024 * 1024


def crop_main_face(data: bytes, cascade_path: Path | None) -> bytes:
    """The stored crop of the most prominent face, found without any model (for /teach)."""
    decoded = decode_image(data)
    faces = default_face_finder(cascade_path).find(decoded.pixels)
    if not faces:
        raise BotError("I found no face in that picture.")
    return context_crop(decoded.pixels, faces[0].box, CropSettings().lift)


class Dataset(commands.Cog):
    """Teaching, exporting and counting a server's data."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="teach", description="Add labelled pictures of a character")
    @app_commands.describe(character="the character's name", image="a picture of them")
    @is_moderator()
    async def teach(
        self,
        interaction: discord.Interaction,
        character: str,
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
    ) -> None:
        """Store the main face of each picture as a training example of ``character``."""
        label = typed_name(character)
        await interaction.response.defer(thinking=True, ephemeral=True)
        lines = []
        pictures = [a for a in (image, image2, image3, image4) if a is not None]
        for number, attachment in enumerate(pictures, start=1):
            try:
                crop = await self._main_face_crop(attachment.url)
                await self.bot.storage.examples.add_taught(
                    label, crop, interaction.user.id, interaction.guild_id
                )
                lines.append(f"{number}. learnt")
            except BotError as exc:
                lines.append(f"{number}. not used: {exc.user_message}")
        await interaction.followup.send(f"Teaching *{label}*:\n" + "\n".join(lines), ephemeral=True)

    async def _main_face_crop(self, url: str) -> bytes:
        download = await self.bot.fetcher.fetch(url)
        try:
            answer = await self.bot.recognition.recognize(download.data)
        except NoModelError:
            return await asyncio.to_thread(
                crop_main_face, download.data, self.bot.settings.cascade_path
            )
        if not answer.context_pngs:
            raise BotError("I found no face in that picture.")
        return answer.context_pngs[0]

    @app_commands.command(name="export", description="Download the confirmed dataset as a zip")
    @is_manager()
    async def export(self, interaction: discord.Interaction) -> None:
        """Attach ``dataset.zip`` (one folder per character), if Discord accepts its size."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        data = await self.bot.training.export_zip()
        limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_UPLOAD_LIMIT
        if len(data) > limit:
            raise BotError(
                f"The dataset zip is {len(data) / 1e6:.1f} MB, over Discord's "
                f"{limit / 1e6:.0f} MB upload limit here; export it on the server instead."
            )
        await interaction.followup.send(
            "The confirmed dataset:",
            file=discord.File(io.BytesIO(data), "dataset.zip"),
            ephemeral=True,
        )

    @app_commands.command(name="stats", description="Corrections and accuracy in this server")
    @is_manager()
    async def stats(self, interaction: discord.Interaction) -> None:
        """What was answered and corrected here, and how often the model was right."""
        stats = await self.bot.storage.stats.collect(interaction.guild_id)
        accuracy = "no judged faces yet" if stats.accuracy is None else percent(stats.accuracy)
        embed = discord.Embed(title="Statistics", colour=discord.Colour.blurple())
        for name, value in (
            ("Pictures", stats.images),
            ("Faces", stats.faces),
            ("Votes", stats.votes),
            ("Corrections", stats.corrections),
            ("Held for moderators", stats.held),
            ("Training examples", stats.training_examples),
            ("Accuracy as judged by users", accuracy),
        ):
            embed.add_field(name=name, value=str(value))
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Dataset(bot))
