"""The model a server's answers come from: ``/retrain``, ``/model`` and ``/rollback``."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_manager, server
from bot.errors import BotError, NoModelError, TrainingBusyError
from bot.presenters import character_name, percent
from bot.training import TrainingOutcome
from bot.training_progress import ProgressBoard, Step

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

PROGRESS_EDIT_SECONDS = 3.0
RETRAIN_COOLDOWN = 120.0
"""Seconds between two ``/retrain`` in one server (a training takes a minute or more)."""
MAX_SUMMARY_LINES = 20


def training_summary(outcome: TrainingOutcome) -> discord.Embed | None:
    """Per character, validation pictures the model named right before and after."""
    rows = outcome.metrics.get("per_character") or {}
    if not rows:
        return None
    lines = []
    for name, row in list(rows.items())[:MAX_SUMMARY_LINES]:
        before = "new" if row.get("before") is None else f"{row['before']}/{row['of']}"
        lines.append(f"{character_name(name)}: {before} → {row['after']}/{row['of']}")
    if len(rows) > MAX_SUMMARY_LINES:
        lines.append(f"and {len(rows) - MAX_SUMMARY_LINES} more")
    embed = discord.Embed(
        title="Validation pictures named right, before → after",
        description="\n".join(lines),
        colour=discord.Colour.green() if outcome.promoted else discord.Colour.orange(),
    )
    return embed


def trained_at(info: dict[str, Any]) -> datetime | None:
    """When the bundle was made: the ``created_at`` its ``model.json`` holds (ISO 8601)."""
    try:
        created = datetime.fromisoformat(str(info["created_at"]))
    except (KeyError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


class Models(commands.Cog):
    """Training, inspecting and rolling back the serving model."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    async def _refresh_model(self) -> None:
        await asyncio.to_thread(self.bot.recognition.refresh)

    @app_commands.command(name="retrain", description="Train a new model on all confirmed data")
    @app_commands.checks.cooldown(1, RETRAIN_COOLDOWN, key=lambda i: i.guild_id)
    @is_manager()
    async def retrain(self, interaction: discord.Interaction) -> None:
        """Run the trainer, showing its stages in one private message, and hot-swap the
        result; the summary says what changed per character."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        board = ProgressBoard()
        board.note("Preparing the training data…")
        status = await interaction.followup.send(board.render(), ephemeral=True, wait=True)
        last_edit = time.monotonic()

        async def progress(update: str | Step) -> None:
            nonlocal last_edit
            if isinstance(update, Step):
                urgent = board.advance(update)
            else:
                board.note(update)
                urgent = True
            if not urgent and time.monotonic() - last_edit < PROGRESS_EDIT_SECONDS:
                return
            last_edit = time.monotonic()
            try:
                await status.edit(content=board.render())
            except discord.HTTPException:
                log.info("could not show training progress", exc_info=True)

        async def finish(text: str, embed: discord.Embed | None = None) -> None:
            # The interaction's token (so the private message) expires after 15 minutes:
            # then the result goes to the channel, for the admin who asked.
            try:
                await status.edit(content=text, embed=embed)
            except discord.HTTPException:
                if isinstance(interaction.channel, discord.abc.Messageable):
                    notice = f"{interaction.user.mention}, the training you started ended. {text}"
                    await interaction.channel.send(notice, embeds=[embed] if embed else [])

        try:
            outcome = await self.bot.training.retrain(
                interaction.user.id, server(interaction), progress
            )
        except TrainingBusyError as exc:
            await finish(f"Not started. {exc.user_message}")
            return
        except BotError as exc:
            await finish(f"Training stopped. {exc.user_message}")
            return
        summary = training_summary(outcome)
        if outcome.promoted:
            await self._refresh_model()
            await finish(f"✅ {outcome.message}", summary)
        else:
            await finish(f"Kept the current model: {outcome.message}.", summary)

    @app_commands.command(name="model", description="Show the model that is serving")
    @is_manager()
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
        if created := trained_at(info):
            stamp = int(created.timestamp())
            embed.add_field(name="Trained", value=f"<t:{stamp}:f> (<t:{stamp}:R>)")
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
    @is_manager()
    async def rollback(self, interaction: discord.Interaction) -> None:
        """Move the model pointer back to the previously promoted bundle."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        version = await self.bot.training.rollback()
        await self._refresh_model()
        await interaction.followup.send(f"Model {version} is serving again.", ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Models(bot))
