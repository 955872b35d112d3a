"""The model a server's answers come from: ``/retrain``, ``/model`` and ``/rollback`` (a
server's managers, for their server only), and ``/base`` (the bot's owners: the base model
every server without its own model is answered by)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.cogs.checks import is_manager, is_owner, server
from bot.errors import BotError, NoModelError, TrainingBusyError
from bot.i18n import ENGLISH, Texts
from bot.model_store import ServingModel
from bot.names import character_name
from bot.phrases import Phrase, phrase
from bot.presenters import percent
from bot.storage.scope import Scope
from bot.training import TrainingOutcome
from bot.training_progress import REFIT_PLAN, ProgressBoard, Step

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

PROGRESS_EDIT_SECONDS = 3.0
RETRAIN_COOLDOWN = 120.0
"""Seconds between two ``/retrain`` in one server."""
MAX_SUMMARY_LINES = 20


def training_summary(outcome: TrainingOutcome, texts: Texts = ENGLISH) -> discord.Embed | None:
    """Per character, the pictures neither model was trained on that each named right."""
    changes = [*outcome.characters, *outcome.new_characters]
    if not changes:
        return None
    lines = []
    for change in changes[:MAX_SUMMARY_LINES]:
        of = change.pictures
        before = texts("new") if change.right_before is None else f"{change.right_before}/{of}"
        lines.append(f"{character_name(change.name)}: {before} → {change.right_after}/{of}")
    if len(changes) > MAX_SUMMARY_LINES:
        lines.append(texts("and {count} more", count=len(changes) - MAX_SUMMARY_LINES))
    return discord.Embed(
        title=texts("Pictures neither model was trained on, named right before → after"),
        description="\n".join(lines),
        colour=discord.Colour.green() if outcome.promoted else discord.Colour.orange(),
    )


def trained_at(info: dict[str, Any]) -> datetime | None:
    """When the model was made: the ``created_at`` it was stored with (ISO 8601)."""
    try:
        created = datetime.fromisoformat(str(info["created_at"]))
    except (KeyError, ValueError):
        return None
    return created if created.tzinfo else created.replace(tzinfo=UTC)


async def model_embed(
    bot: AnimeBot, model: ServingModel, *, own: bool, texts: Texts = ENGLISH
) -> discord.Embed:
    """What ``/model`` and ``/base model`` show of a serving model."""
    info = await bot.storage.model_versions.get(model.scope, model.version)
    details = info.info if info is not None else {}
    metrics = info.metrics if info is not None else {}
    title = (
        texts("This server's own model {version}", version=model.version)
        if own
        else texts("The base model {version}", version=model.version)
    )
    embed = discord.Embed(title=title, colour=discord.Colour.blurple())
    names = ", ".join(character_name(label) for label in model.labels)
    embed.add_field(
        name=texts("{count} characters", count=len(model.labels)),
        value=names if len(names) <= 1000 else names[:1000] + "…",
        inline=False,
    )
    if info is not None:
        embed.add_field(name=texts("Training pictures"), value=str(info.training_size))
    if isinstance(metrics.get("top1"), int | float):
        embed.add_field(name=texts("Cross-validated top-1"), value=percent(metrics["top1"]))
    if created := trained_at(details):
        stamp = int(created.timestamp())
        embed.add_field(name=texts("Trained"), value=f"<t:{stamp}:f> (<t:{stamp}:R>)")
    return embed


class Models(commands.Cog):
    """Training, inspecting and rolling back the model of one server."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot
        self._retrain_cooldowns: dict[int, app_commands.Cooldown] = {}
        """Per server: ``discord.py``'s cooldown decorator would count refused runs too."""

    @app_commands.command(
        name="retrain", description="Train this server's own model on its confirmed pictures"
    )
    @is_manager()
    async def retrain(self, interaction: discord.Interaction) -> None:
        """Refit this server's model, showing its stages in one private message; it answers
        in this server only, and only if it is not worse than the model answering now. The
        summary says what changed per character.

        The server's cooldown starts when a training really starts (its first stage): a
        ``/retrain`` refused for lack of data, or while one runs, leaves it as it was.
        """
        cooldown = self._retrain_cooldowns.setdefault(
            server(interaction), app_commands.Cooldown(1, RETRAIN_COOLDOWN)
        )
        if retry_after := cooldown.get_retry_after():
            raise app_commands.CommandOnCooldown(cooldown, retry_after)
        await interaction.response.defer(thinking=True, ephemeral=True)
        texts = self.bot.catalog.texts(interaction.locale)
        board = ProgressBoard(plan=REFIT_PLAN)
        board.note(phrase("Preparing the training data…"))
        status = await interaction.followup.send(board.render(texts), ephemeral=True, wait=True)
        last_edit = time.monotonic()

        async def progress(update: Phrase | Step) -> None:
            nonlocal last_edit
            if isinstance(update, Step):
                if not board.started:
                    cooldown.update_rate_limit()
                urgent = board.advance(update)
            else:
                board.note(update)
                urgent = True
            if not urgent and time.monotonic() - last_edit < PROGRESS_EDIT_SECONDS:
                return
            last_edit = time.monotonic()
            try:
                await status.edit(content=board.render(texts))
            except discord.HTTPException:
                log.info("could not show training progress", exc_info=True)

        async def finish(said: Phrase, embed: discord.Embed | None = None) -> None:
            # The interaction's token (so the private message) expires after 15 minutes:
            # then the result goes to the channel (in the server's language), for the admin
            # who asked.
            try:
                await status.edit(content=texts(said), embed=embed)
            except discord.HTTPException:
                if isinstance(interaction.channel, discord.abc.Messageable):
                    notice = self.bot.catalog.texts(interaction.guild_locale)(
                        "{mention}, the training you started ended. {result}",
                        mention=interaction.user.mention,
                        result=said,
                    )
                    await interaction.channel.send(notice, embeds=[embed] if embed else [])

        try:
            outcome = await self.bot.training.retrain(
                interaction.user.id, server(interaction), progress
            )
        except TrainingBusyError as exc:
            await finish(phrase("Not started. {reason}", reason=exc.phrase))
            return
        except BotError as exc:
            await finish(phrase("Training stopped. {reason}", reason=exc.phrase))
            return
        summary = training_summary(outcome, texts)
        if outcome.promoted:
            await finish(phrase("✅ {result}", result=outcome.message), summary)
        else:
            await finish(
                phrase("Kept the current model: {reason}.", reason=outcome.message), summary
            )

    @app_commands.command(name="model", description="Show the model that answers in this server")
    @is_manager()
    async def model(self, interaction: discord.Interaction) -> None:
        """The model answering here: this server's own, or the base model."""
        guild_id = server(interaction)
        model = await self.bot.models.serving(guild_id)
        if model is None:
            raise NoModelError()
        embed = await model_embed(
            self.bot,
            model,
            own=model.scope == Scope.of_guild(guild_id),
            texts=self.bot.catalog.texts(interaction.locale),
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(
        name="rollback", description="Answer with this server's previous model again"
    )
    @app_commands.describe(
        base="Answer with the base model again instead (this server's models are kept)"
    )
    @is_manager()
    async def rollback(self, interaction: discord.Interaction, base: bool = False) -> None:
        """This server's previous model answers here again (or the base model, with ``base``)."""
        await interaction.response.defer(thinking=True, ephemeral=True)
        version = await self.bot.training.rollback(server(interaction), to_base=base)
        texts = self.bot.catalog.texts(interaction.locale)
        text = (
            texts("The base model answers in this server again.")
            if version is None
            else texts("Model {version} answers in this server again.", version=version)
        )
        await interaction.followup.send(text, ephemeral=True)


@is_owner()
class Base(
    commands.GroupCog,
    group_name="base",
    group_description="The base model every server starts with (the bot's owners only)",
):
    """The base model every server without its own model is answered by."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot
        super().__init__()

    @app_commands.command(
        name="model", description="Show the base model and how many servers have their own"
    )
    async def model(self, interaction: discord.Interaction) -> None:
        """The base model, and how many servers are answered by a model of their own."""
        model = await self.bot.models.base_model()
        if model is None:
            raise NoModelError()
        texts = self.bot.catalog.texts(interaction.locale)
        embed = await model_embed(self.bot, model, own=False, texts=texts)
        own = await self.bot.storage.model_versions.scopes_with_own_model()
        embed.add_field(name=texts("Servers with their own model"), value=str(own))
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="rollback", description="Serve the previous base model again")
    async def rollback(self, interaction: discord.Interaction) -> None:
        """The previously installed base model serves again (every server without its own)."""
        texts = self.bot.catalog.texts(interaction.locale)
        previous = await self.bot.storage.model_versions.previous(Scope.BASE)
        if previous is None:
            await interaction.response.send_message(
                texts("There is no earlier base model to go back to."), ephemeral=True
            )
            return
        await self.bot.models.promote(Scope.BASE, previous.version)
        await interaction.response.send_message(
            texts("Base model {version} serves again.", version=previous.version), ephemeral=True
        )


async def setup(bot: AnimeBot) -> None:
    """Register the cogs."""
    await bot.add_cog(Models(bot))
    await bot.add_cog(Base(bot))
