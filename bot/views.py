"""Discord components: the correction controls under answers, and the name modal.

The controls are ``DynamicItem``s whose custom ids carry the face id, so clicks on old
answers keep working after a restart. They reach the bot's services through
``interaction.client`` (:func:`bot.app.bot_of`), never through a cog lookup. Every reply
here is ephemeral, and a vote's "thanks" is sent only after its transaction committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Sequence
from typing import Any

import discord

from bot.app import bot_of
from bot.errors import BotError, DatabaseUnavailableError
from bot.names import TYPED_NAME_MAX, typed_name
from bot.vision.recognizer import FaceResult
from bot.voting import Voter

log = logging.getLogger(__name__)

OTHER = "\x00other"
MAX_MENU_LABELS = 24
MAX_FACES_WITH_CONTROLS = 4  # one menu row each; the fifth row holds the "right" buttons
GENERIC_FAILURE = "Something went wrong on my side; it has been logged."
NOT_SAVED = "Corrections can't be saved right now, try again later."


def menu_labels(recognition_labels: list[str], known: list[str]) -> list[str]:
    """The face's ranked labels first, then the other known labels; at most 24, no repeats."""
    seen: dict[str, None] = {}
    for label in [*recognition_labels, *known]:
        seen.setdefault(label, None)
    return list(seen)[:MAX_MENU_LABELS]


async def reply(interaction: discord.Interaction, message: str) -> None:
    """An ephemeral answer, whether or not the interaction was answered before."""
    if interaction.response.is_done():
        await interaction.followup.send(message, ephemeral=True)
    else:
        await interaction.response.send_message(message, ephemeral=True)


def voter_of(interaction: discord.Interaction) -> Voter:
    """Who clicked, as the voting service needs to know them."""
    return Voter(
        user_id=interaction.user.id,
        guild_id=interaction.guild_id,
        account_created=interaction.user.created_at,
        is_moderator=interaction.guild_id is not None and interaction.permissions.manage_messages,
    )


async def answer_vote(interaction: discord.Interaction, vote: Awaitable[str]) -> None:
    """Await ``vote`` and reply with its message; a database failure, a BotError or anything
    else becomes a short reply."""
    try:
        message = await vote
    except DatabaseUnavailableError as exc:
        log.warning("correction refused: the database is unavailable (%s)", exc)
        message = NOT_SAVED
    except BotError as exc:
        message = exc.user_message
    except Exception:
        log.exception("correction failed")
        message = GENERIC_FAILURE
    else:
        bot_of(interaction).metrics.count_correction()
    await reply(interaction, message)


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

        async def vote() -> str:
            label = typed_name(self.name.value)
            voting = bot_of(interaction).voting
            return await voting.vote(
                voter_of(interaction), self.face_id, label, is_confirmation=False
            )

        await answer_vote(interaction, vote())


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
        voting = bot_of(interaction).voting
        await answer_vote(
            interaction,
            voting.vote(voter_of(interaction), self.face_id, choice, is_confirmation=False),
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
        voting = bot_of(interaction).voting
        await answer_vote(interaction, voting.confirm(voter_of(interaction), self.face_id))


CORRECTION_CONTROLS = (FixSelect, RightButton)
"""The dynamic items the bot routes clicks to (registered by the corrections cog)."""


def correction_view(
    face_ids: Sequence[int], faces: Sequence[FaceResult], labels: Sequence[str]
) -> discord.ui.View:
    """The controls under an answer: a menu per face and a "✓ right" button per face.

    ``labels`` are the names the menus offer after each face's own ranked labels.
    """
    view = discord.ui.View(timeout=None)
    shown = list(zip(face_ids, faces, strict=False))[:MAX_FACES_WITH_CONTROLS]
    for number, (face_id, face) in enumerate(shown, start=1):
        ranked = [score.label for score in face.prediction.scores]
        options = [
            discord.SelectOption(label=label[:100], value=label[:100])
            for label in menu_labels(ranked, list(labels))
        ]
        options.append(discord.SelectOption(label="someone else…", value=OTHER))
        view.add_item(FixSelect(face_id, options, f"Face {number}: who is it?"))
    for number, (face_id, _) in enumerate(shown, start=1):
        label = "✓ right" if len(shown) == 1 else f"✓ face {number} right"
        view.add_item(RightButton(face_id, label))
    return view
