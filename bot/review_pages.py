"""The pages of ``/review list``: a few held faces per page, each with its crop, the votes,
what the model said, a link to the message, and accept/dismiss buttons; previous/next.

The view lives in the moderator's ephemeral message (``TIMEOUT`` seconds); every click
reads the held votes afresh, so two moderators never act on a stale page.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.app import bot_of
from bot.errors import BotError
from bot.i18n import ENGLISH, Texts
from bot.names import character_name
from bot.phrases import Phrase, phrase
from bot.presenters import percent
from bot.storage.schema import HoldReason
from bot.storage.scope import Scope
from bot.storage.votes import HeldFace

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

PAGE_SIZE = 4
"""Faces per page: a row of buttons each, and a row to turn pages (Discord allows five)."""
TIMEOUT = 900.0
MAX_VOTES_LISTED = 5
HELD_BECAUSE: dict[HoldReason | None, str] = {
    HoldReason.NEW_ACCOUNT: "new account",
    HoldReason.CONTRADICTS_MODEL: "against a confident answer",
}


def accepted(face_id: int, name: str) -> Phrase:
    """What a moderator reads after accepting a held face."""
    return phrase("Face {face} is now training data for *{name}*.", face=face_id, name=name)


def dismissed(face_id: int, count: int) -> Phrase:
    """What a moderator reads after dismissing a held face's votes."""
    return phrase("Dismissed {count} held correction(s) of face {face}.", count=count, face=face_id)


def message_link(guild_id: int, channel_id: int, message_id: int) -> str:
    """The link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id}/{channel_id}/{message_id}"


def crop_file_name(face: HeldFace) -> str:
    """The attachment name of a held face's crop."""
    return f"face-{face.face_id}.jpg"


def face_embed(
    guild_id: int, face: HeldFace, number: int, names: dict[str, str], texts: Texts = ENGLISH
) -> discord.Embed:
    """One held face: who says what, the model's answer, the link; its crop beside."""
    lines = []
    for vote in face.votes[:MAX_VOTES_LISTED]:
        says = texts(
            "{user} says **{name}**",
            user=f"<@{vote.user_id}>",
            name=character_name(vote.label, names),
        )
        if why := HELD_BECAUSE.get(vote.reason):
            says += f" ({texts(why)})"
        lines.append(says)
    if len(face.votes) > MAX_VOTES_LISTED:
        lines.append(texts("and {count} more", count=len(face.votes) - MAX_VOTES_LISTED))
    first = face.votes[0]
    if first.model_label is not None and first.model_score is not None:
        model = character_name(first.model_label, names)
        lines.append(
            texts("The model said {name} ({score}).", name=model, score=percent(first.model_score))
        )
    if face.accepted_label is not None:
        taught = character_name(face.accepted_label, names)
        if face.accepted_label == face.leading_label:
            lines.append(texts("Already taught as **{name}**.", name=taught))
        else:
            lines.append(
                texts(
                    "Already taught as **{name}**: accepting makes it **{other}** instead.",
                    name=taught,
                    other=character_name(face.leading_label, names),
                )
            )
    link = message_link(guild_id, face.channel_id, face.message_id)
    lines.append(f"[{texts('Open the picture')}]({link})")
    embed = discord.Embed(
        title=texts("{number}. Face {face}", number=number, face=face.face_id),
        description="\n".join(lines),
        colour=discord.Colour.orange(),
    )
    embed.set_thumbnail(url=f"attachment://{crop_file_name(face)}")
    return embed


@dataclass(frozen=True)
class ReviewPage:
    """What one page shows."""

    guild_id: int
    index: int
    pages: int
    faces: tuple[HeldFace, ...]
    embeds: list[discord.Embed]
    names: dict[str, str]
    texts: Texts

    def files(self) -> list[discord.File]:
        """The crops, fresh for each send (a ``discord.File`` can be sent once)."""
        return [
            discord.File(io.BytesIO(face.crop_image), crop_file_name(face)) for face in self.faces
        ]


async def review_page(
    bot: AnimeBot, guild_id: int, index: int, texts: Texts = ENGLISH
) -> ReviewPage | None:
    """Page ``index`` of the held faces (the last one if fewer are left), in ``texts``'
    language; None when none."""
    held = await bot.storage.votes.held_faces(guild_id, index * PAGE_SIZE, PAGE_SIZE)
    if held.total == 0:
        return None
    pages = -(-held.total // PAGE_SIZE)
    if not held.faces:  # faces were decided since: show the last page there is
        return await review_page(bot, guild_id, pages - 1, texts)
    characters = await bot.storage.characters.listing(Scope.of_guild(guild_id))
    names = {character.key: character.name for character in characters}
    embeds = [
        face_embed(guild_id, face, index * PAGE_SIZE + number, names, texts)
        for number, face in enumerate(held.faces, start=1)
    ]
    embeds[0].set_author(
        name=texts(
            "Held corrections: {count} face(s), page {page} of {pages}",
            count=held.total,
            page=index + 1,
            pages=pages,
        )
    )
    return ReviewPage(guild_id, index, pages, held.faces, embeds, names, texts)


class _Decision(discord.ui.Button["ReviewView"]):
    def __init__(self, face: HeldFace, number: int, accept: bool, page: ReviewPage) -> None:
        name = character_name(face.leading_label, page.names)
        label = (
            page.texts("{number}. Accept “{name}”", number=number, name=name)[:80]
            if accept
            else page.texts("{number}. Dismiss", number=number)
        )
        super().__init__(
            label=label,
            style=discord.ButtonStyle.success if accept else discord.ButtonStyle.danger,
            row=(number - 1) % PAGE_SIZE,
        )
        self.face = face
        self.accept = accept

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.decide(interaction, self.face, self.accept)


class _Turn(discord.ui.Button["ReviewView"]):
    def __init__(self, label: str, step: int, disabled: bool) -> None:
        super().__init__(
            label=label, style=discord.ButtonStyle.secondary, disabled=disabled, row=PAGE_SIZE
        )
        self.step = step

    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.turn(interaction, self.step)


class ReviewView(discord.ui.View):
    """Accept/dismiss per face and previous/next, for the moderator who asked."""

    def __init__(self, guild_id: int, moderator_id: int, page: ReviewPage) -> None:
        super().__init__(timeout=TIMEOUT)
        self.guild_id = guild_id
        self.moderator_id = moderator_id
        self.show(page)

    def show(self, page: ReviewPage) -> None:
        """Buttons for ``page``."""
        self.page = page
        self.clear_items()
        first = page.index * PAGE_SIZE + 1
        for number, face in enumerate(page.faces, start=first):
            self.add_item(_Decision(face, number, True, page))
            self.add_item(_Decision(face, number, False, page))
        if page.pages > 1:
            self.add_item(_Turn(page.texts("◀ Previous"), -1, page.index == 0))
            self.add_item(_Turn(page.texts("Next ▶"), 1, page.index >= page.pages - 1))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the moderator whose list it is (it is ephemeral: nobody else sees it)."""
        return interaction.user.id == self.moderator_id

    async def decide(self, interaction: discord.Interaction, face: HeldFace, accept: bool) -> None:
        """Accept the leading label of ``face`` or dismiss its held votes, then redraw."""
        bot = bot_of(interaction)
        texts = self.page.texts
        try:
            if accept:
                outcome = await bot.storage.votes.confirm_by_moderator(
                    face.face_id, self.guild_id, face.leading_label, interaction.user.id
                )
                bot.dispatch("guild_characters_changed", self.guild_id)
                name = character_name(outcome.name, self.page.names)
                done = texts(accepted(face.face_id, name))
            else:
                count = await bot.storage.votes.dismiss_held(face.face_id, self.guild_id)
                done = texts(dismissed(face.face_id, count))
        except BotError as exc:
            await interaction.response.send_message(texts(exc.phrase), ephemeral=True)
            return
        await self._redraw(interaction, self.page.index, done)

    async def turn(self, interaction: discord.Interaction, step: int) -> None:
        """Show the previous or next page."""
        await self._redraw(interaction, self.page.index + step, None)

    async def _redraw(self, interaction: discord.Interaction, index: int, done: str | None) -> None:
        texts = self.page.texts
        page = await review_page(bot_of(interaction), self.guild_id, max(index, 0), texts)
        if page is None:
            self.stop()
            await interaction.response.edit_message(
                content=f"{done or ''}\n{texts('Nothing else is waiting.')}".strip(),
                embeds=[],
                attachments=[],
                view=None,
            )
            return
        self.show(page)
        await interaction.response.edit_message(
            content=done, embeds=page.embeds, attachments=page.files(), view=self
        )
