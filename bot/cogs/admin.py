"""Server admin and moderator commands: retrain, model, rollback, stats, export, settings,
teach, and the people's data (forgetme, contributions, purge).

Permissions are checked by the bot itself (``checks.has_permissions``), not only hidden
by Discord's default permissions, and every server command refuses DMs.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BotError, NoModelError
from bot.names import typed_name
from bot.presenters import percent
from bot.storage.users import UserData
from bot.training import TrainingManager
from bot.vision.crop import CropSettings, context_crop
from bot.vision.decode import decode_image
from bot.vision.faces import default_face_finder

if TYPE_CHECKING:
    from pathlib import Path

    from bot.app import AnimeBot

log = logging.getLogger(__name__)

DEFAULT_UPLOAD_LIMIT = 25 * 1024 * 1024
PROGRESS_EDIT_SECONDS = 3.0
MAX_LABELS_SETTING = 10
MAX_VOTES_SETTING = 10


def _in_guild(interaction: discord.Interaction) -> bool:
    """Refuse DMs in the bot itself (``guild_only`` only tells Discord to hide the command)."""
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return True


in_guild = app_commands.check(_in_guild)
manage_guild = app_commands.checks.has_permissions(manage_guild=True)
manage_messages = app_commands.checks.has_permissions(manage_messages=True)


def describe_user_data(data: UserData) -> str:
    """``3 votes (1 held), 2 training examples, 4 pictures``."""
    return (
        f"{data.votes} votes ({data.held_votes} held), "
        f"{data.examples} training examples, {data.images} pictures"
    )


def crop_main_face(data: bytes, cascade_path: Path | None) -> bytes:
    """The stored crop of the most prominent face, found without any model (for /teach)."""
    decoded = decode_image(data)
    faces = default_face_finder(cascade_path).find(decoded.pixels)
    if not faces:
        raise BotError("I found no face in that picture.")
    return context_crop(decoded.pixels, faces[0].box, CropSettings().lift)


class Admin(commands.Cog):
    """Commands for those who run a server's bot."""

    settings_group = app_commands.Group(
        name="settings",
        description="Show or change how the bot behaves in this server",
        guild_only=True,
        default_permissions=discord.Permissions(manage_guild=True),
    )

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot
        self.training = TrainingManager(
            bot.storage, bot.models, bot.settings, instance=bot.instance_name
        )

    async def _refresh_model(self) -> None:
        await asyncio.to_thread(self.bot.recognition.refresh)

    @app_commands.command(name="retrain", description="Train a new model on all confirmed data")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @manage_guild
    @in_guild
    async def retrain(self, interaction: discord.Interaction) -> None:
        """Run the trainer, showing progress in one message, and hot-swap the result."""
        await interaction.response.defer(thinking=True)
        status = await interaction.followup.send("Preparing the training data…", wait=True)
        last_edit = 0.0

        async def progress(text: str) -> None:
            nonlocal last_edit
            if time.monotonic() - last_edit < PROGRESS_EDIT_SECONDS:
                return
            last_edit = time.monotonic()
            try:
                await status.edit(content=text)
            except discord.HTTPException:
                log.info("could not show training progress", exc_info=True)

        async def finish(text: str) -> None:
            # The interaction's token (and so the status message) expires after 15 minutes.
            try:
                await status.edit(content=text)
            except discord.HTTPException:
                if isinstance(interaction.channel, discord.abc.Messageable):
                    await interaction.channel.send(text)

        try:
            outcome = await self.training.retrain(
                interaction.user.id, interaction.guild_id, progress
            )
        except BotError as exc:
            await finish(f"Training stopped. {exc.user_message}")
            return
        if outcome.promoted:
            await self._refresh_model()
            await finish(f"✅ {outcome.message}")
        else:
            await finish(f"Kept the current model: {outcome.message}.")

    @app_commands.command(name="model", description="Show the model that is serving")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @manage_guild
    @in_guild
    async def model(self, interaction: discord.Interaction) -> None:
        """Version, characters, training size and validation metrics, with the confusion matrix."""
        bundle = self.bot.recognition.bundle
        if bundle is None:
            raise NoModelError()
        info = bundle.info
        metrics = info.get("metrics", {})
        training = info.get("training", {})
        embed = discord.Embed(title=f"Model {bundle.version}", colour=discord.Colour.blurple())
        names = ", ".join(bundle.labels)
        embed.add_field(
            name=f"{len(bundle.labels)} characters",
            value=names if len(names) <= 1000 else names[:1000] + "…",
            inline=False,
        )
        embed.add_field(name="Training pictures", value=str(training.get("pictures", "?")))
        if isinstance(metrics.get("top1"), int | float):
            embed.add_field(name="Cross-validated top-1", value=percent(metrics["top1"]))
        if created := info.get("created"):
            embed.set_footer(text=f"created {created}")
        confusion = bundle.path / "confusion.png"
        if confusion.is_file():
            data = await asyncio.to_thread(confusion.read_bytes)
            embed.set_image(url="attachment://confusion.png")
            await interaction.response.send_message(
                embed=embed, file=discord.File(io.BytesIO(data), "confusion.png"), ephemeral=True
            )
        else:
            await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="rollback", description="Serve the previous model again")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @manage_guild
    @in_guild
    async def rollback(self, interaction: discord.Interaction) -> None:
        """Move the model pointer back to the previously promoted bundle."""
        await interaction.response.defer(thinking=True)
        version = await self.training.rollback()
        await self._refresh_model()
        await interaction.followup.send(f"Model {version} is serving again.")

    @app_commands.command(name="stats", description="Corrections and accuracy in this server")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @manage_guild
    @in_guild
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

    @app_commands.command(name="export", description="Download the confirmed dataset as a zip")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_guild=True)
    @manage_guild
    @in_guild
    async def export(self, interaction: discord.Interaction) -> None:
        """Attach ``dataset.zip`` (one folder per character), if Discord accepts its size."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        data = await self.training.export_zip()
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

    @settings_group.command(name="show", description="Show this server's settings")
    @manage_guild
    @in_guild
    async def settings_show(self, interaction: discord.Interaction) -> None:
        """The current settings."""
        await self._show_settings(interaction, "Settings")

    @settings_group.command(name="watch", description="Answer pictures in a channel unasked")
    @manage_guild
    @in_guild
    async def settings_watch(
        self, interaction: discord.Interaction, channel: discord.TextChannel
    ) -> None:
        """Add a watched channel."""
        assert interaction.guild_id is not None
        await self.bot.storage.guilds.watch(interaction.guild_id, channel.id)
        self.bot.dispatch("guild_settings_changed", interaction.guild_id)
        await self._show_settings(interaction, f"Watching {channel.mention}")

    @settings_group.command(name="unwatch", description="Stop answering pictures in a channel")
    @manage_guild
    @in_guild
    async def settings_unwatch(
        self, interaction: discord.Interaction, channel: discord.TextChannel
    ) -> None:
        """Remove a watched channel."""
        assert interaction.guild_id is not None
        removed = await self.bot.storage.guilds.unwatch(interaction.guild_id, channel.id)
        self.bot.dispatch("guild_settings_changed", interaction.guild_id)
        title = f"Stopped watching {channel.mention}" if removed else "That channel was not watched"
        await self._show_settings(interaction, title)

    @settings_group.command(name="labels_shown", description="How many labels to show per face")
    @manage_guild
    @in_guild
    async def settings_labels(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, MAX_LABELS_SETTING],
    ) -> None:
        """Set the number of labels shown per face."""
        assert interaction.guild_id is not None
        await self.bot.storage.guilds.update(interaction.guild_id, labels_shown=count)
        self.bot.dispatch("guild_settings_changed", interaction.guild_id)
        await self._show_settings(interaction, "Settings changed")

    @settings_group.command(name="auto_reply", description="Answer pictures without being asked")
    @manage_guild
    @in_guild
    async def settings_auto_reply(self, interaction: discord.Interaction, enabled: bool) -> None:
        """Switch automatic answers on or off."""
        assert interaction.guild_id is not None
        await self.bot.storage.guilds.update(interaction.guild_id, auto_reply=enabled)
        self.bot.dispatch("guild_settings_changed", interaction.guild_id)
        await self._show_settings(interaction, "Settings changed")

    @settings_group.command(
        name="votes_needed", description="How many people must agree on a correction"
    )
    @manage_guild
    @in_guild
    async def settings_votes(
        self,
        interaction: discord.Interaction,
        count: app_commands.Range[int, 1, MAX_VOTES_SETTING],
    ) -> None:
        """Set the number of agreeing votes that makes training data."""
        assert interaction.guild_id is not None
        await self.bot.storage.guilds.update(interaction.guild_id, votes_needed=count)
        self.bot.dispatch("guild_settings_changed", interaction.guild_id)
        await self._show_settings(interaction, "Settings changed")

    async def _show_settings(self, interaction: discord.Interaction, title: str) -> None:
        assert interaction.guild_id is not None
        config = await self.bot.storage.guilds.get(interaction.guild_id)
        channels = ", ".join(f"<#{c}>" for c in sorted(config.watched_channels)) or "every channel"
        embed = discord.Embed(title=title, colour=discord.Colour.blurple())
        embed.add_field(name="Auto-reply", value="on" if config.auto_reply else "off")
        embed.add_field(name="Watched channels", value=channels)
        embed.add_field(name="Labels shown", value=str(config.labels_shown))
        embed.add_field(name="Votes needed", value=str(config.votes_needed))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="teach", description="Add labelled pictures of a character")
    @app_commands.describe(character="the character's name", image="a picture of them")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_messages=True)
    @manage_messages
    @in_guild
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

    review_group = app_commands.Group(
        name="review",
        description="Corrections held for a moderator",
        guild_only=True,
        default_permissions=discord.Permissions(manage_messages=True),
    )

    async def _face_in_this_server(self, interaction: discord.Interaction, face: int) -> None:
        stored = await self.bot.storage.images.face(face)
        if stored is None or stored.guild_id != interaction.guild_id:
            raise BotError(f"There is no face {face} in this server.")

    @review_group.command(name="list", description="Corrections waiting for a moderator")
    @manage_messages
    @in_guild
    async def review_list(self, interaction: discord.Interaction) -> None:
        """Held corrections, oldest first, with what the model said."""
        assert interaction.guild_id is not None
        held = await self.bot.storage.votes.held(interaction.guild_id)
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

    @review_group.command(name="accept", description="Make a held correction training data")
    @app_commands.describe(face="the face number from /review list", label="the right name")
    @manage_messages
    @in_guild
    async def review_accept(
        self, interaction: discord.Interaction, face: int, label: str | None = None
    ) -> None:
        """Confirm ``label`` (default: the held vote's label) for ``face``."""
        await self._face_in_this_server(interaction, face)
        assert interaction.guild_id is not None
        if label is None:
            held = {
                v.label
                for v in await self.bot.storage.votes.held(interaction.guild_id, 100)
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

    @review_group.command(name="dismiss", description="Reject the held corrections of a face")
    @app_commands.describe(face="the face number from /review list")
    @manage_messages
    @in_guild
    async def review_dismiss(self, interaction: discord.Interaction, face: int) -> None:
        """Dismiss every held vote on ``face``."""
        await self._face_in_this_server(interaction, face)
        count = await self.bot.storage.votes.dismiss_held(face)
        await interaction.response.send_message(
            f"Dismissed {count} held correction(s) of face {face}.", ephemeral=True
        )

    @app_commands.command(name="forgetme", description="Delete your votes and contributions")
    async def forgetme(self, interaction: discord.Interaction) -> None:
        """Delete everything stored about the caller, everywhere."""
        removed = await self.bot.storage.users.forget_user(interaction.user.id)
        await interaction.response.send_message(
            f"Deleted: {describe_user_data(removed)}.", ephemeral=True
        )

    @app_commands.command(name="contributions", description="What a member contributed here")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_messages=True)
    @manage_messages
    @in_guild
    async def contributions(self, interaction: discord.Interaction, user: discord.User) -> None:
        """A member's votes, held votes, examples and pictures in this server."""
        data = await self.bot.storage.users.contributions(user.id, interaction.guild_id)
        await interaction.response.send_message(
            f"{user.mention}: {describe_user_data(data)}.", ephemeral=True
        )

    @app_commands.command(name="purge", description="Remove a member's training contributions")
    @app_commands.guild_only()
    @app_commands.default_permissions(manage_messages=True)
    @manage_messages
    @in_guild
    async def purge(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Delete a member's votes and the examples they made in this server."""
        assert interaction.guild_id is not None
        removed = await self.bot.storage.users.purge_user(user.id, interaction.guild_id)
        await interaction.response.send_message(
            f"Removed from {user.mention}: {describe_user_data(removed)}.", ephemeral=True
        )


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Admin(bot))
