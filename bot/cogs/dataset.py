"""A server's training data: ``/teach`` adds to it, ``/export`` downloads it, ``/stats``
counts it."""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_manager, is_moderator, server
from bot.cogs.choices import character_choices
from bot.errors import BotError
from bot.names import typed_name
from bot.phrases import Phrase, phrase
from bot.presenters import NO_ANIME_FACE, percent
from bot.storage.scope import Scope
from bot.teaching import TeachableFaces, teachable_faces
from bot.views import FacePicker

if TYPE_CHECKING:
    from bot.app import AnimeBot

DEFAULT_UPLOAD_LIMIT = 25 * 1024 * 1024
NOT_USED = "{number}. not used: {reason}"


class Dataset(commands.Cog):
    """Teaching, exporting and counting a server's data."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    @app_commands.command(name="teach", description="Add labelled pictures of a character")
    @app_commands.describe(
        character="the character's name",
        image="a picture of them",
        image2="another picture",
        image3="another picture",
        image4="another picture",
        face="in pictures with several faces, which one (the number on the picture)",
    )
    @is_moderator()
    async def teach(
        self,
        interaction: discord.Interaction,
        character: str,
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        face: app_commands.Range[int, 1, 10] | None = None,
    ) -> None:
        """Store a face of each picture as a training example of ``character``: the one a
        detector found, the one ``face`` names, or the one the moderator then picks."""
        guild_id = server(interaction)
        label = typed_name(character)
        await interaction.response.defer(thinking=True, ephemeral=True)
        texts = self.bot.catalog.texts(interaction.locale)
        learnt = 0
        lines = []
        questions: list[tuple[int, TeachableFaces]] = []
        pictures = [a for a in (image, image2, image3, image4) if a is not None]
        for number, attachment in enumerate(pictures, start=1):
            try:
                download = await self.bot.fetcher.fetch(attachment.url)
                found = await asyncio.to_thread(
                    teachable_faces, download.data, self.bot.settings.cascade_path
                )
            except BotError as exc:
                lines.append(texts(NOT_USED, number=number, reason=exc.phrase))
                continue
            if not found.crops:
                lines.append(texts(NOT_USED, number=number, reason=Phrase(NO_ANIME_FACE)))
            elif face is not None and face > len(found.crops):
                reason = phrase(
                    "it has {count} face(s), no face {face}.", count=len(found.crops), face=face
                )
                lines.append(texts(NOT_USED, number=number, reason=reason))
            elif len(found.crops) == 1 or face is not None:
                crop = found.crops[(face or 1) - 1]
                await self.bot.storage.examples.add_taught(
                    Scope.of_guild(guild_id), label, crop, interaction.user.id
                )
                lines.append(texts("{number}. learnt", number=number))
                learnt += 1
            else:
                lines.append(
                    texts(
                        "{number}. {count} faces: which one? (below)",
                        number=number,
                        count=len(found.crops),
                    )
                )
                questions.append((number, found))
        if learnt:
            self.bot.dispatch("guild_characters_changed", guild_id)
        heading = texts("Teaching *{name}*:", name=label)
        await interaction.followup.send(heading + "\n" + "\n".join(lines), ephemeral=True)
        for number, found in questions:
            assert found.numbered_jpeg is not None
            await interaction.followup.send(
                texts("Picture {number}: which face is *{name}*?", number=number, name=label),
                file=discord.File(io.BytesIO(found.numbered_jpeg), "faces.jpg"),
                view=FacePicker(guild_id, label, found.crops, interaction.user.id, texts),
                ephemeral=True,
            )

    @teach.autocomplete("character")
    async def teach_character(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """This server's characters whose name or alias contains what was typed."""
        return await character_choices(self.bot, interaction, current, with_base=True)

    @app_commands.command(name="export", description="Download the confirmed dataset as a zip")
    @is_manager()
    async def export(self, interaction: discord.Interaction) -> None:
        """Attach ``dataset.zip`` (one folder per character), if Discord accepts its size."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        texts = self.bot.catalog.texts(interaction.locale)
        scope = Scope.of_guild(server(interaction))
        if not await self.bot.storage.examples.counts(scope):
            await interaction.followup.send(
                texts(
                    "This server has no confirmed examples yet: `/teach` some, or confirm answers."
                ),
                ephemeral=True,
            )
            return
        data = await self.bot.training.export_zip(scope)
        limit = interaction.guild.filesize_limit if interaction.guild else DEFAULT_UPLOAD_LIMIT
        if len(data) > limit:
            raise BotError(
                "The dataset zip is {size} MB, over Discord's {limit} MB upload limit here; "
                "export it on the server instead.",
                size=f"{len(data) / 1e6:.1f}",
                limit=f"{limit / 1e6:.0f}",
            )
        await interaction.followup.send(
            texts("The confirmed dataset:"),
            file=discord.File(io.BytesIO(data), "dataset.zip"),
            ephemeral=True,
        )

    @app_commands.command(name="stats", description="Corrections and accuracy in this server")
    @is_manager()
    async def stats(self, interaction: discord.Interaction) -> None:
        """What was answered and corrected here, and how often the model was right."""
        texts = self.bot.catalog.texts(interaction.locale)
        stats = await self.bot.storage.stats.collect(server(interaction))
        accuracy = (
            texts("no judged faces yet") if stats.accuracy is None else percent(stats.accuracy)
        )
        embed = discord.Embed(title=texts("Statistics"), colour=discord.Colour.blurple())
        for name, value in (
            (texts("Pictures"), stats.images),
            (texts("Faces"), stats.faces),
            (texts("Votes"), stats.votes),
            (texts("Corrections"), stats.corrections),
            (texts("Held for moderators"), stats.held),
            (texts("Training examples"), stats.training_examples),
            (texts("Accuracy as judged by users"), accuracy),
        ):
            embed.add_field(name=name, value=str(value))
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Dataset(bot))
