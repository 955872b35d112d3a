"""Correction controls under each answer: "who is it?" menus, "✓ right" buttons, a name modal.

The controls are ``DynamicItem``s whose custom ids carry the face id, so clicks on old
answers keep working after a restart. Every reply here is ephemeral, and a vote's
"thanks" is sent only after its transaction committed.

While the database is unavailable, votes are refused ("corrections can't be saved right
now, try again later"), not queued: a queue in memory dies with the process, and the
rate limit and the checks against the face need the database anyway.
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.errors import BotError, DatabaseUnavailableError
from bot.names import TYPED_NAME_MAX, typed_name
from bot.storage.votes import VoteOutcome, VoteStatus
from bot.vision.recognizer import Recognition

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

OTHER = "\x00other"
MAX_MENU_LABELS = 24
MAX_FACES_WITH_CONTROLS = 4  # one menu row each; the fifth row holds the "right" buttons
RATE_LIMIT_VOTES = 10
RATE_LIMIT_SECONDS = 60.0
NEW_ACCOUNT_AGE = timedelta(days=7)
GENERIC_FAILURE = "Something went wrong on my side; it has been logged."
NOT_SAVED = "Corrections can't be saved right now, try again later."


def menu_labels(recognition_labels: list[str], known: list[str]) -> list[str]:
    """The face's ranked labels first, then the model's other labels; at most 24, no repeats."""
    seen: dict[str, None] = {}
    for label in [*recognition_labels, *known]:
        seen.setdefault(label, None)
    return list(seen)[:MAX_MENU_LABELS]


def describe_outcome(outcome: VoteOutcome) -> str:
    """The sentence telling a voter what their vote did."""
    if outcome.status is VoteStatus.HELD:
        return f"Thanks — your vote for *{outcome.label}* is held for a moderator to check."
    if outcome.newly_accepted:
        return f"Thanks — *{outcome.label}* is accepted as training data."
    if outcome.accepted:
        return f"Thanks — *{outcome.label}* is already accepted as training data."
    return f"Thanks — {outcome.agreeing} of {outcome.needed} votes needed for *{outcome.label}*."


async def reply(interaction: discord.Interaction, message: str) -> None:
    """An ephemeral answer, whether or not the interaction was answered before."""
    if interaction.response.is_done():
        await interaction.followup.send(message, ephemeral=True)
    else:
        await interaction.response.send_message(message, ephemeral=True)


def _corrections(interaction: discord.Interaction) -> Corrections:
    cog = interaction.client.get_cog("Corrections")  # type: ignore[attr-defined]
    if not isinstance(cog, Corrections):
        raise BotError("Corrections are switched off right now.")
    return cog


async def _guarded(interaction: discord.Interaction, coro: Any) -> None:
    """Await ``coro``; a database failure, a BotError or anything else becomes a short reply."""
    try:
        await coro
    except Exception as exc:
        if isinstance(exc, DatabaseUnavailableError):
            log.warning("correction refused: the database is unavailable (%s)", exc)
            await reply(interaction, NOT_SAVED)
        elif isinstance(exc, BotError):
            await reply(interaction, exc.user_message)
        else:
            log.exception("correction failed")
            await reply(interaction, GENERIC_FAILURE)


class NameModal(discord.ui.Modal, title="Who is it?"):
    """Asks for a character's name when the menu does not list it."""

    name: discord.ui.TextInput[NameModal] = discord.ui.TextInput(
        label="Character name", placeholder="e.g. Nishikino Maki", max_length=TYPED_NAME_MAX
    )

    def __init__(self, face_id: int) -> None:
        super().__init__()
        self.face_id = face_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Check the name and vote for it."""

        async def vote() -> None:
            label = typed_name(self.name.value)
            await _corrections(interaction).vote(interaction, self.face_id, label, False)

        await _guarded(interaction, vote())


class FixSelect(discord.ui.DynamicItem[discord.ui.Select], template=r"fix:(?P<face>\d+)"):
    """The "who is it?" menu of one face."""

    def __init__(
        self,
        face_id: int,
        options: list[discord.SelectOption] | None = None,
        placeholder: str | None = None,
    ) -> None:
        super().__init__(
            discord.ui.Select(
                custom_id=f"fix:{face_id}",
                placeholder=placeholder or "Wrong? Who is it?",
                options=options or [discord.SelectOption(label="someone else…", value=OTHER)],
            )
        )
        self.face_id = face_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> FixSelect:
        """Rebuild the menu of a message sent before a restart."""
        if isinstance(item, discord.ui.Select):
            return cls(int(match["face"]), list(item.options), item.placeholder)
        return cls(int(match["face"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """A label votes at once; "someone else…" asks for the name."""
        choice = self.item.values[0] if self.item.values else OTHER
        if choice == OTHER:
            await interaction.response.send_modal(NameModal(self.face_id))
            return
        await _guarded(
            interaction, _corrections(interaction).vote(interaction, self.face_id, choice, False)
        )


class RightButton(discord.ui.DynamicItem[discord.ui.Button], template=r"ok:(?P<face>\d+)"):
    """ "✓ right": a vote for the model's own answer."""

    def __init__(self, face_id: int, label: str = "✓ right") -> None:
        super().__init__(
            discord.ui.Button(
                custom_id=f"ok:{face_id}", label=label, style=discord.ButtonStyle.success
            )
        )
        self.face_id = face_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> RightButton:
        """Rebuild the button of a message sent before a restart."""
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(int(match["face"]), label or "✓ right")

    async def callback(self, interaction: discord.Interaction) -> None:
        """Vote for the label the model ranked first."""
        await _guarded(interaction, _corrections(interaction).confirm(interaction, self.face_id))


class Corrections(commands.Cog):
    """Turns clicks under answers into votes."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        """Route clicks on any answer's controls here, including answers from before a restart."""
        self.bot.add_dynamic_items(FixSelect, RightButton)

    async def cog_unload(self) -> None:
        """Stop routing clicks here."""
        self.bot.remove_dynamic_items(FixSelect, RightButton)

    def view_for(
        self, face_ids: list[int], recognition: Recognition, labels: list[str]
    ) -> discord.ui.View:
        """The controls under an answer: a menu per face and a "✓ right" button per face."""
        view = discord.ui.View(timeout=None)
        shown = list(zip(face_ids, recognition.faces, strict=False))[:MAX_FACES_WITH_CONTROLS]
        for number, (face_id, face) in enumerate(shown, start=1):
            ranked = [score.label for score in face.prediction.scores]
            options = [
                discord.SelectOption(label=label[:100], value=label[:100])
                for label in menu_labels(ranked, labels)
            ]
            options.append(discord.SelectOption(label="someone else…", value=OTHER))
            view.add_item(FixSelect(face_id, options, f"Face {number}: who is it?"))
        for number, (face_id, _) in enumerate(shown, start=1):
            label = "✓ right" if len(shown) == 1 else f"✓ face {number} right"
            view.add_item(RightButton(face_id, label))
        return view

    async def confirm(self, interaction: discord.Interaction, face_id: int) -> None:
        """A "right" vote: the model's top label for ``face_id``."""
        face = await self.bot.storage.images.face(face_id)
        if face is None or not face.scores:
            raise BotError("That picture is no longer stored, so it cannot be confirmed.")
        await self.vote(interaction, face_id, face.scores[0].label, True)

    async def vote(
        self, interaction: discord.Interaction, face_id: int, label: str, is_confirmation: bool
    ) -> None:
        """Rate-limit, cast (or, for a moderator's correction, confirm) and tell the voter."""
        user = interaction.user
        storage = self.bot.storage
        moderator = (
            interaction.guild_id is not None
            and interaction.permissions.manage_messages
            and not is_confirmation
        )
        if not moderator:
            recent = await storage.votes.recent_count(user.id, RATE_LIMIT_SECONDS)
            if recent >= RATE_LIMIT_VOTES:
                raise BotError(
                    f"Slow down: at most {RATE_LIMIT_VOTES} votes a minute. Try again shortly."
                )
        if moderator:
            outcome = await storage.votes.confirm_by_moderator(face_id, label, user.id)
            message = f"Confirmed by a moderator: *{outcome.label}* is training data."
        else:
            # Brand-new accounts are a cheap way to flood votes: a moderator checks theirs.
            new_account = discord.utils.utcnow() - user.created_at < NEW_ACCOUNT_AGE
            outcome = await storage.votes.cast(
                face_id,
                user.id,
                interaction.guild_id,
                label,
                is_confirmation,
                hold=new_account,
            )
            message = describe_outcome(outcome)
        self.bot.metrics.corrections += 1
        log.info("vote on face %s: %s (%s)", face_id, outcome.label, outcome.status)
        await reply(interaction, message)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Corrections(bot))
