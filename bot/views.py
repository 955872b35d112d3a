"""Discord components: the correction controls under answers, the name modal, and the
question ``/teach`` asks when a picture has several faces.

The controls are ``DynamicItem``s whose custom ids carry the face id, so clicks on old
answers keep working after a restart. They reach the bot's services through
``interaction.client`` (:func:`bot.app.bot_of`), never through a cog lookup. Every reply
here is ephemeral, and a vote's "thanks" is sent only after its transaction committed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import discord

from bot.app import bot_of
from bot.errors import BotError, DatabaseUnavailableError
from bot.i18n import ENGLISH, Texts
from bot.names import TYPED_NAME_MAX, character_name, normalise_name, typed_name
from bot.phrases import Phrase, phrase
from bot.storage.scope import Scope
from bot.vision.recognizer import FaceResult
from bot.voting import Ballot, Voter

log = logging.getLogger(__name__)

OTHER = "\x00other"
SOMEONE_ELSE = "someone else…"
MAX_MENU_LABELS = 24
MAX_FACES_WITH_CONTROLS = 4  # one menu row each; the fifth row holds the "right" buttons
GENERIC_FAILURE = "Something went wrong on my side; it has been logged."
NOT_SAVED = "Corrections can't be saved right now, try again later."
WHO_IS_IT = "Who is it?"
WRONG_WHO_IS_IT = "Wrong? Who is it?"


def menu_labels(ranked: Sequence[str], names: Mapping[str, str]) -> list[str]:
    """What a face's menu offers: its ranked labels the server may see, then the server's
    other names; display names, one per character (by key), at most 24."""
    keys = [key for key in (normalise_name(label) for label in ranked) if key in names]
    seen: dict[str, None] = dict.fromkeys(keys)
    for key in names:
        seen.setdefault(key, None)
    return [names[key] for key in list(seen)[:MAX_MENU_LABELS]]


def readers_texts(interaction: discord.Interaction) -> Texts:
    """The texts in the language of whoever clicked."""
    return bot_of(interaction).catalog.texts(interaction.locale)


def servers_texts(interaction: discord.Interaction) -> Texts:
    """The texts in the server's language, for what everyone there sees."""
    return bot_of(interaction).catalog.texts(interaction.guild_locale)


async def reply(interaction: discord.Interaction, said: str | Phrase) -> None:
    """An ephemeral answer in the reader's language, whether or not the interaction was
    answered before."""
    message = readers_texts(interaction)(said)
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


def confirmed_view(
    message: discord.Message, face_id: int, name: str, texts: Texts = ENGLISH
) -> discord.ui.View:
    """The controls of an answer with those of ``face_id`` replaced by a disabled
    "✓ Confirmed: name" (no vote on it can change anything any more)."""
    view = discord.ui.View.from_message(message, timeout=None)
    for item in list(view.children):
        custom_id = getattr(item, "custom_id", None)
        if custom_id == f"fix:{face_id}":
            view.remove_item(item)
            done: discord.ui.Button[discord.ui.View] = discord.ui.Button(
                label=texts("✓ Confirmed: {name}", name=character_name(name))[:80],
                custom_id=f"done:{face_id}",
                style=discord.ButtonStyle.success,
                disabled=True,
                row=item.row,
            )
            view.add_item(done)
        elif custom_id == f"ok:{face_id}":
            view.remove_item(item)
    return view


async def vote_text(vote: Awaitable[Phrase | Ballot]) -> Ballot | Phrase:
    """Await ``vote``: the ballot (what it did), or, for a database failure, a BotError or
    anything else, the short sentence that says the vote was not counted."""
    try:
        said = await vote
    except DatabaseUnavailableError as exc:
        log.warning("correction refused: the database is unavailable (%s)", exc)
        return phrase(NOT_SAVED)
    except BotError as exc:
        return exc.phrase
    except Exception:
        log.exception("correction failed")
        return phrase(GENERIC_FAILURE)
    return said if isinstance(said, Ballot) else Ballot(said, None)


async def answer_vote(
    interaction: discord.Interaction, vote: Awaitable[Phrase | Ballot], face_id: int | None = None
) -> None:
    """Await ``vote`` and reply with its sentence. When the vote made ``face_id`` (on the
    message the interaction came from) confirmed training data, that answer's controls for
    it say so."""
    said = await vote_text(vote)
    if isinstance(said, Phrase):
        await reply(interaction, said)
        return
    bot_of(interaction).metrics.count_correction()
    answer = interaction.message if said.confirmed and face_id is not None else None
    if said.confirmed and face_id is not None and answer is not None and answer.components:
        try:
            view = confirmed_view(answer, face_id, said.confirmed, servers_texts(interaction))
            await interaction.response.edit_message(view=view)
        except discord.HTTPException:
            log.info("could not mark face %s as confirmed", face_id, exc_info=True)
    await reply(interaction, said.message)


class NameChoice(discord.ui.View):
    """After "someone else…": the server's characters matching the typed name, or the typed
    name itself as a new one (a modal cannot autocomplete)."""

    def __init__(
        self, face_id: int, typed: str, matches: Sequence[str], texts: Texts = ENGLISH
    ) -> None:
        super().__init__(timeout=TEACH_PICK_SECONDS)
        self.face_id = face_id
        options = [
            discord.SelectOption(label=character_name(name)[:100], value=name[:100])
            for name in matches
        ]
        new_name = texts("“{name}” (a new name)", name=typed)
        options.append(discord.SelectOption(label=new_name[:100], value=typed[:100]))
        self.choose: discord.ui.Select[NameChoice] = discord.ui.Select(
            placeholder=texts(WHO_IS_IT), options=options[: MAX_MENU_LABELS + 1]
        )
        self.choose.callback = self.chosen  # type: ignore[method-assign]
        self.add_item(self.choose)

    async def chosen(self, interaction: discord.Interaction) -> None:
        """Vote for the chosen name and say what it did in place of the question."""
        voting = bot_of(interaction).voting
        ballot = voting.ballot(
            voter_of(interaction), self.face_id, self.choose.values[0], is_confirmation=False
        )
        said = await vote_text(ballot)
        if isinstance(said, Ballot):
            bot_of(interaction).metrics.count_correction()
        self.stop()
        message = said.message if isinstance(said, Ballot) else said
        await interaction.response.edit_message(
            content=readers_texts(interaction)(message), view=None
        )


class NameModal(discord.ui.Modal, title=WHO_IS_IT):
    """Asks for a character's name when the menu does not list it."""

    def __init__(self, face_id: int, guild_id: int | None, texts: Texts = ENGLISH) -> None:
        super().__init__(title=texts(WHO_IS_IT))
        self.name: discord.ui.TextInput[NameModal] = discord.ui.TextInput(
            label=texts("Character name"),
            placeholder=texts("e.g. Nishikino Maki"),
            max_length=TYPED_NAME_MAX,
        )
        self.add_item(self.name)
        self.face_id = face_id
        self.guild_id = guild_id

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Vote for the typed name when it names a character of the server (or an alias),
        or nothing like it; otherwise offer the characters it matches."""
        bot = bot_of(interaction)
        try:
            label = typed_name(self.name.value)
            matches: list[str] = []
            if self.guild_id is not None:
                scope = Scope.of_guild(self.guild_id)
                known = await bot.storage.characters.find_visible(scope, label)
                if known is not None:
                    label = known.name
                else:
                    matches = await bot.storage.characters.search_visible(
                        scope, label, MAX_MENU_LABELS
                    )
        except DatabaseUnavailableError:
            await reply(interaction, NOT_SAVED)
            return
        except BotError as exc:
            await reply(interaction, exc.phrase)
            return
        if matches:
            texts = readers_texts(interaction)
            await interaction.response.send_message(
                texts("Did you mean one of these? Or keep “{name}” as a new name.", name=label),
                view=NameChoice(self.face_id, label, matches, texts),
                ephemeral=True,
            )
            return
        ballot = bot.voting.ballot(
            voter_of(interaction), self.face_id, label, is_confirmation=False
        )
        await answer_vote(interaction, ballot, self.face_id)


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
                placeholder=placeholder or WRONG_WHO_IS_IT,
                options=options or [discord.SelectOption(label=SOMEONE_ELSE, value=OTHER)],
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
            modal = NameModal(self.face_id, interaction.guild_id, readers_texts(interaction))
            await interaction.response.send_modal(modal)
            return
        voting = bot_of(interaction).voting
        await answer_vote(
            interaction,
            voting.ballot(voter_of(interaction), self.face_id, choice, is_confirmation=False),
            self.face_id,
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
        ballot = voting.confirm_ballot(voter_of(interaction), self.face_id)
        await answer_vote(interaction, ballot, self.face_id)


CORRECTION_CONTROLS = (FixSelect, RightButton)
"""The dynamic items the bot routes clicks to (registered by the corrections cog)."""


def correction_view(
    face_ids: Sequence[int],
    faces: Sequence[FaceResult],
    names: Mapping[str, str],
    *,
    titles: Sequence[str] | None = None,
    texts: Texts = ENGLISH,
) -> discord.ui.View:
    """The controls under an answer: a menu per face, and a "✓ right" button per face whose
    answer is one of ``names`` (key → display name: the characters this server may see).

    ``titles`` number the faces as the answer does (``1``, ``2``, or ``2.1`` for the first
    face of a post's second picture); the texts are in the reader's language.
    """
    view = discord.ui.View(timeout=None)
    shown = list(zip(face_ids, faces, strict=False))[:MAX_FACES_WITH_CONTROLS]
    numbers = list(titles or [str(n) for n in range(1, len(shown) + 1)])
    for number, (face_id, face) in zip(numbers, shown, strict=False):
        ranked = [score.label for score in face.prediction.scores]
        options = [
            discord.SelectOption(label=character_name(name)[:100], value=name[:100])
            for name in menu_labels(ranked, names)
        ]
        options.append(discord.SelectOption(label=texts(SOMEONE_ELSE), value=OTHER))
        placeholder = texts("Face {number}: who is it?", number=number)
        view.add_item(FixSelect(face_id, options, placeholder))
    confirmable = [
        (number, face_id)
        for number, (face_id, face) in zip(numbers, shown, strict=False)
        if normalise_name(face.prediction.best.label) in names
    ]
    for number, face_id in confirmable:
        label = (
            texts("✓ right") if len(shown) == 1 else texts("✓ face {number} right", number=number)
        )
        view.add_item(RightButton(face_id, label))
    return view


TEACH_PICK_SECONDS = 600.0


class _FaceButton(discord.ui.Button["FacePicker"]):
    def __init__(self, number: int | None, texts: Texts) -> None:
        super().__init__(
            label=texts("none of them")
            if number is None
            else texts("face {number}", number=number),
            style=discord.ButtonStyle.secondary if number is None else discord.ButtonStyle.primary,
        )
        self.number = number

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.picked(interaction, self.number)


class FacePicker(discord.ui.View):
    """Asks a moderator which face of a picture ``/teach`` should learn (ephemeral; the
    crops wait in memory for ``TEACH_PICK_SECONDS``)."""

    def __init__(
        self,
        guild_id: int,
        character: str,
        crops: Sequence[bytes],
        moderator_id: int,
        texts: Texts = ENGLISH,
    ) -> None:
        super().__init__(timeout=TEACH_PICK_SECONDS)
        self.guild_id = guild_id
        self.character = character
        self.crops = tuple(crops)
        self.moderator_id = moderator_id
        for number in range(1, len(self.crops) + 1):
            self.add_item(_FaceButton(number, texts))
        self.add_item(_FaceButton(None, texts))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the moderator who taught picks."""
        return interaction.user.id == self.moderator_id

    async def picked(self, interaction: discord.Interaction, number: int | None) -> None:
        """Learn face ``number`` (None: none of them) and say so in place of the question."""
        texts = readers_texts(interaction)
        if number is None:
            said = texts("Nothing learnt from that picture.")
        else:
            bot = bot_of(interaction)
            try:
                await bot.storage.examples.add_taught(
                    Scope.of_guild(self.guild_id),
                    self.character,
                    self.crops[number - 1],
                    interaction.user.id,
                )
            except DatabaseUnavailableError:
                await interaction.response.send_message(texts(NOT_SAVED), ephemeral=True)
                return
            bot.dispatch("guild_characters_changed", self.guild_id)
            said = texts("Learnt face {number} as *{name}*.", number=number, name=self.character)
        self.stop()
        await interaction.response.edit_message(content=said, attachments=[], view=None)
