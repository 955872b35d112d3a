"""Answers picture posts in watched channels, and ``/identify`` on demand.

The database is not needed to answer: while it is unavailable, servers' settings are the
last ones read (or the defaults), and answers go out unrecorded, without correction controls.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.errors import BotError, BusyError, FetchError, StorageError
from bot.i18n import ENGLISH, Texts
from bot.names import normalise_name
from bot.presenters import BEST_GUESS, NO_FACE_TRY_GUESS, NOT_RECORDED, answer_embed, error_embed
from bot.service import Answer
from bot.storage.guilds import GuildConfig
from bot.storage.images import FaceRecord, LabelScore, RecordedImage
from bot.storage.schema import DEFAULT_LABELS_SHOWN
from bot.storage.scope import Scope
from bot.typing_indicator import TypingIndicator
from bot.views import MAX_FACES_WITH_CONTROLS, correction_view
from bot.vision.recognizer import FaceResult

if TYPE_CHECKING:
    from bot.app import AnimeBot

log = logging.getLogger(__name__)

MAX_PICTURES_PER_MESSAGE = 4
SETTINGS_TTL = 10.0
IDENTIFY_MENU = "Identify characters"
RESTARTING = "I'm restarting: post the picture again in a minute."
UNEXPECTED = "Something went wrong on my side while looking at that picture; it has been logged."
NOTHING_TO_IDENTIFY = "attach a picture or give a message link"
NO_PICTURE_IN_MESSAGE = "that message has no picture"
NOT_A_LINK = "that is not a link to a Discord message or a picture"
LINK_ELSEWHERE = "I only look at messages of the server the command is used in"
CANNOT_READ_CHANNEL = "I cannot read that channel"
CANNOT_SEE_MESSAGE = "I cannot see that message"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp")
MESSAGE_LINK = re.compile(
    r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)"
)


def log_answer(answer: Answer) -> None:
    """The internals of an answer, for the log (members never see them)."""
    recognition = answer.recognition
    log.info(
        "picture %s: %d face(s) by %s, model %s, %.0f ms",
        answer.sha256[:12],
        len(recognition.faces),
        ",".join(sorted({face.detector for face in recognition.faces})) or "-",
        recognition.model_version,
        recognition.seconds * 1000,
    )


def picture_urls(message: discord.Message) -> list[str]:
    """Every picture of a message: attachments that look like pictures, then the images of
    its embeds, by the copy on Discord's media proxy (``proxy_url``, on
    ``media.discordapp.net`` or ``images-ext-*.discordapp.net``) that Discord made of a
    linked picture: the link itself points anywhere on the web."""
    urls = []
    for attachment in message.attachments:
        is_image = (attachment.content_type or "").startswith("image/")
        if is_image or attachment.filename.lower().endswith(IMAGE_SUFFIXES):
            urls.append(attachment.url)
    for embed in message.embeds:
        for media in (embed.image, embed.thumbnail):
            url = getattr(media, "proxy_url", None) or getattr(media, "url", None)
            if url and url not in urls:
                urls.append(url)
                break
    return urls


def message_pictures(message: discord.Message) -> list[str]:
    """The pictures of a message ``/identify`` was pointed at; FetchError if it has none."""
    urls = picture_urls(message)
    if not urls:
        raise FetchError(NO_PICTURE_IN_MESSAGE)
    return urls


@dataclass
class AnswerPart:
    """One picture's share of a reply: its embed, its pictures and its correctable faces."""

    embed: discord.Embed
    files: list[discord.File] = field(default_factory=list)
    face_ids: list[int] = field(default_factory=list)
    faces: list[FaceResult] = field(default_factory=list)
    error: str | None = None
    """Why the picture could not be answered (the embed says so too)."""
    number: int = 0
    """The picture's place among the pictures of its post looked at (from 1; 0: unknown)."""

    @classmethod
    def failed(cls, message: str) -> AnswerPart:
        """The part of a picture that could not be answered: ``message`` in red."""
        return cls(error_embed(message), error=message)


def combine(
    parts: list[AnswerPart],
    names: Mapping[str, str],
    texts: Texts,
    skipped: int = 0,
    looked_at: int | None = None,
) -> dict[str, Any]:
    """One reply covering every picture of a post: an embed each (their number above it
    when there are several), all their pictures, one set of correction controls.

    ``looked_at`` is how many of the post's pictures were looked at (default: one per
    part). A part is numbered by its picture's place in the post (:attr:`AnswerPart.number`)
    and the pictures without a part (no anime face) are named: numbering the parts one
    after the other called the fourth of four pictures "Picture 3 of 3" when the third had
    no face, and a lone answer to one of four pictures did not say which it was.
    """
    count = len(parts) if looked_at is None else looked_at
    numbers = [part.number or n for n, part in enumerate(parts, start=1)]
    if count > 1:
        for number, part in zip(numbers, parts, strict=True):
            part.embed.set_author(
                name=texts("Picture {number} of {count}", number=number, count=count)
            )
    payload: dict[str, Any] = {
        "embeds": [part.embed for part in parts],
        "files": [file for part in parts for file in part.files],
    }
    notes = []
    if skipped:
        notes.append(
            texts(
                "I look at a message's first {limit} pictures and left out the other {skipped}.",
                limit=MAX_PICTURES_PER_MESSAGE,
                skipped=skipped,
            )
        )
    if faceless := [n for n in range(1, count + 1) if n not in numbers]:
        notes.append(
            texts(
                "Pictures without an anime face: {numbers}.",
                numbers=", ".join(map(str, faceless)),
            )
        )
    if notes:
        payload["content"] = "\n".join(notes)
    titles: list[str] = []
    face_ids: list[int] = []
    faces: list[FaceResult] = []
    for number, part in zip(numbers, parts, strict=True):
        for position, (face_id, face) in enumerate(zip(part.face_ids, part.faces, strict=True)):
            if count == 1:
                titles.append(str(position + 1))
            else:
                titles.append(str(number) if len(part.faces) == 1 else f"{number}.{position + 1}")
            face_ids.append(face_id)
            faces.append(face)
    if face_ids:
        payload["view"] = correction_view(face_ids, faces, names, titles=titles, texts=texts)
    if len(face_ids) > MAX_FACES_WITH_CONTROLS:
        # Discord allows five rows of controls: a menu per face for four, and the buttons.
        shown = ", ".join(titles[:MAX_FACES_WITH_CONTROLS])
        note = texts("Only faces {faces} can be corrected below.", faces=shown)
        payload["content"] = "\n".join(filter(None, [payload.get("content"), note]))
    return payload


class Recognize(commands.Cog):
    """Picture in, ranked characters per face out."""

    def __init__(self, bot: AnimeBot) -> None:
        self.bot = bot
        self.identify_menu = app_commands.ContextMenu(
            name=IDENTIFY_MENU, callback=self.identify_message
        )
        self._settings: dict[int, tuple[float, GuildConfig]] = {}
        self._reading: dict[int, asyncio.Task[GuildConfig | None]] = {}
        self._names: dict[int, tuple[float, dict[str, str]]] = {}
        self.typing = TypingIndicator()

    async def cog_load(self) -> None:
        """Offer "Identify characters" in every message's Apps menu."""
        self.bot.tree.add_command(self.identify_menu)

    async def cog_unload(self) -> None:
        """Withdraw the message menu command."""
        self.bot.tree.remove_command(IDENTIFY_MENU, type=discord.AppCommandType.message)

    async def guild_config(self, guild_id: int) -> GuildConfig:
        """The server's settings, read at most every ``SETTINGS_TTL`` seconds.

        This process forgets them at once when its own commands change them; other processes
        sharing the database follow within the TTL. Posts that arrive together while the
        settings are being read share that one read. While the database is down, the last
        settings read (or the defaults) are used.
        """
        cached = self._settings.get(guild_id)
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL:
            return cached[1]
        reading = self._reading.get(guild_id)
        if reading is None:
            reading = asyncio.create_task(self._read_config(guild_id))
            self._reading[guild_id] = reading
            reading.add_done_callback(lambda done: self._read_done(guild_id, done))
        # Shielded: one caller giving up (its message deleted, say) does not cancel the
        # read the others wait for.
        config = await asyncio.shield(reading)
        if config is not None:
            return config
        cached = self._settings.get(guild_id)
        return cached[1] if cached else GuildConfig(guild_id=guild_id)

    async def _read_config(self, guild_id: int) -> GuildConfig | None:
        try:
            config = await self.bot.storage.guilds.get(guild_id)
        except StorageError as exc:
            log.warning(
                "settings of server %s unavailable (%s): using %s",
                guild_id,
                exc,
                "the last ones read" if guild_id in self._settings else "the defaults",
            )
            return None
        # A settings command during the read drops it from _reading: it may have seen the
        # old settings, so it answers its waiters but is not cached.
        if self._reading.get(guild_id) is asyncio.current_task():
            self._settings[guild_id] = (time.monotonic(), config)
        return config

    def _read_done(self, guild_id: int, done: asyncio.Task[GuildConfig | None]) -> None:
        if self._reading.get(guild_id) is done:
            del self._reading[guild_id]

    @commands.Cog.listener()
    async def on_guild_settings_changed(self, guild_id: int) -> None:
        """A settings command ran here: read the settings afresh next time."""
        self._settings.pop(guild_id, None)
        self._reading.pop(guild_id, None)  # a read under way may have seen the old ones

    async def answer(self, url: str, guild_id: int | None) -> Answer:
        """Download and recognise one picture with server ``guild_id``'s model (errors are
        BotErrors with a user message)."""
        started = time.perf_counter()
        async with self.bot.recognition.reserve() as place:
            download = await self.bot.fetcher.fetch(url)
            answer = await place.recognize(download.data, guild_id)
        self.bot.metrics.observe(time.perf_counter() - started)
        return answer

    async def answer_part(
        self,
        answer: Answer,
        *,
        guild_id: int | None,
        channel_id: int,
        message_id: int,
        author_id: int,
        best_guess: bool = False,
        texts: Texts = ENGLISH,
        tag: str = "",
    ) -> AnswerPart | None:
        """Store the answer and build its embed, pictures and correctable faces.

        Only faces a detector found are answered, stored and offered for correction. With
        none, there is no reply (None) unless ``best_guess`` asks for the guess on the
        picture as a whole, which is neither stored nor correctable. Answers outside a
        server, and answers that cannot be stored, go out without correction controls.
        One face gets its crop as the thumbnail, several the numbered picture.
        """
        recognition = answer.recognition
        labels_shown = DEFAULT_LABELS_SHOWN
        if guild_id is not None:
            labels_shown = (await self.guild_config(guild_id)).labels_shown
        detected = recognition.detected_faces
        names = await self.menu_names(guild_id) if guild_id is not None else {}
        if not detected:
            if not best_guess or not recognition.faces:
                return None
            embed = answer_embed(
                recognition,
                labels_shown=labels_shown,
                annotated=False,
                correctable=False,
                note=texts(BEST_GUESS),
                texts=texts,
                names=names,
            )
            return AnswerPart(embed)
        recognition = replace(recognition, faces=detected)
        recorded = None
        if guild_id is not None:
            recorded = await self._record(
                answer,
                guild_id=guild_id,
                channel_id=channel_id,
                message_id=message_id,
                author_id=author_id,
            )
        files = []
        face_file, faces_file = f"face{tag}.jpg", f"faces{tag}.jpg"
        if len(detected) == 1:
            position = next(i for i, f in enumerate(answer.recognition.faces) if f is detected[0])
            crop = answer.context_pngs[position]
            files.append(discord.File(io.BytesIO(crop), face_file))
        embed = answer_embed(
            recognition,
            labels_shown=labels_shown,
            annotated=answer.annotated_jpeg is not None,
            correctable=recorded is not None,
            note=texts(NOT_RECORDED) if guild_id is not None and recorded is None else None,
            thumbnail=f"attachment://{face_file}" if files else None,
            texts=texts,
            names=names,
        )
        log_answer(answer)
        if answer.annotated_jpeg is not None:
            files.append(discord.File(io.BytesIO(answer.annotated_jpeg), faces_file))
            embed.set_image(url=f"attachment://{faces_file}")
        part = AnswerPart(embed, files)
        if recorded is not None and guild_id is not None:
            part.face_ids = list(recorded.face_ids)
            part.faces = list(detected)
        return part

    async def menu_names(self, guild_id: int) -> dict[str, str]:
        """The characters this server's correction menus may offer, key → display name: the
        labels of the model answering here (its own, or the base model), under the names
        this server or the base gave them, and this server's own characters.

        Read at most every ``SETTINGS_TTL`` seconds (at once after this process taught);
        while the database is down, the last names read (or none).
        """
        cached = self._names.get(guild_id)
        if cached is not None and time.monotonic() - cached[0] < SETTINGS_TTL:
            return cached[1]
        try:
            characters = [
                *await self.bot.storage.characters.listing(Scope.BASE),
                *await self.bot.storage.characters.listing(Scope.of_guild(guild_id)),
            ]
            model = await self.bot.models.serving(guild_id)
        except BotError as exc:
            log.warning("character names of server %s unavailable (%s)", guild_id, exc)
            return cached[1] if cached else {}
        shown = {character.key: character.name for character in characters}
        own = [c for c in characters if not c.scope.is_base]
        hidden = {c.key for c in own if c.hidden}
        names = {c.key: c.name for c in own if not c.hidden}
        for label in model.labels if model is not None else ():
            key = normalise_name(label)
            if key not in hidden:
                names.setdefault(key, shown.get(key, label))
        self._names[guild_id] = (time.monotonic(), names)
        return names

    @commands.Cog.listener()
    async def on_guild_characters_changed(self, guild_id: int) -> None:
        """This process taught the server a character: read the names afresh next time."""
        self._names.pop(guild_id, None)

    async def _record(
        self,
        answer: Answer,
        *,
        guild_id: int,
        channel_id: int,
        message_id: int,
        author_id: int,
    ) -> RecordedImage | None:
        """Store the picture, its faces and the model's answer; None if the database failed."""
        recognition = answer.recognition
        faces = [
            FaceRecord(
                box=tuple(face.box.as_list()),  # type: ignore[arg-type]
                detector=face.detector,
                crop_image=context,
                scores=[LabelScore(s.label, s.score) for s in face.prediction.scores],
                unsure=face.prediction.unsure,
            )
            for face, context in zip(recognition.faces, answer.context_pngs, strict=True)
            if face.is_detected
        ]
        try:
            return await self.bot.storage.images.record(
                sha256=answer.sha256,
                width=recognition.width,
                height=recognition.height,
                guild_id=guild_id,
                channel_id=channel_id,
                message_id=message_id,
                author_id=author_id,
                model_version=recognition.model_version,
                faces=faces,
            )
        except StorageError as exc:
            log.warning(
                "answer to message %s not recorded (%s): it goes out without corrections",
                message_id,
                exc,
            )
            return None

    async def has_model(self, guild_id: int | None) -> bool:
        """Whether a model answers in the server (its own or the base model); when that
        cannot be read now, the answer itself will say what is wrong."""
        try:
            return await self.bot.models.serving(guild_id) is not None
        except BotError as exc:
            log.warning("the model of server %s cannot be read: %s", guild_id, exc)
            return True

    async def watches(self, message: discord.Message) -> bool:
        """Whether the bot answers pictures in this channel unasked: it has a model, and the
        server's settings name the channel (or every channel)."""
        if not await self.has_model(message.guild.id if message.guild else None):
            return False  # the welcome cog tells the server's owner how to start
        if message.guild is None:
            return True
        config = await self.guild_config(message.guild.id)
        return config.watches(message.channel.id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer each picture of a post in a watched channel."""
        if message.author.bot or message.webhook_id is not None:
            return
        urls = picture_urls(message)
        if not urls:
            return
        with self.bot.answering():
            if not await self.watches(message):
                return
            if not self.bot.accepting:
                await self._reply(message, {"embed": error_embed(RESTARTING)})
                return
            await self._answer_post(message, urls)

    async def _answer_post(self, message: discord.Message, urls: list[str]) -> None:
        """One reply for the first ``MAX_PICTURES_PER_MESSAGE`` pictures of a post (saying
        if some were left out); pictures without an anime face get no part of it."""
        channel_id = message.channel.id
        guild_id = message.guild.id if message.guild else None
        texts = self.bot.catalog.texts(message.guild.preferred_locale if message.guild else None)
        async with self.typing.working(message.channel, channel_id):
            parts = await self.answer_pictures(
                urls,
                guild_id=guild_id,
                channel_id=channel_id,
                message_id=message.id,
                author_id=message.author.id,
                texts=texts,
            )
            names = await self.menu_names(guild_id) if guild_id is not None and parts else {}
        if parts:
            skipped = max(len(urls) - MAX_PICTURES_PER_MESSAGE, 0)
            looked_at = len(urls) - skipped
            await self._reply(message, combine(parts, names, texts, skipped, looked_at))
        self.typing.replied(channel_id)

    async def answer_pictures(
        self,
        urls: list[str],
        *,
        guild_id: int | None,
        channel_id: int,
        message_id: int,
        author_id: int,
        texts: Texts,
        best_guess: bool = False,
    ) -> list[AnswerPart]:
        """The parts of a reply to the first ``MAX_PICTURES_PER_MESSAGE`` of ``urls``, in
        order: a picture that fails gets an error part (``AnswerPart.error``), one without
        an anime face none (unless ``best_guess``)."""
        looked_at = urls[:MAX_PICTURES_PER_MESSAGE]
        parts: list[AnswerPart] = []
        for number, url in enumerate(looked_at, start=1):
            try:
                answer = await self.answer(url, guild_id)
                part = await self.answer_part(
                    answer,
                    guild_id=guild_id,
                    channel_id=channel_id,
                    message_id=message_id,
                    author_id=author_id,
                    best_guess=best_guess,
                    texts=texts,
                    tag=f"-{number}" if len(looked_at) > 1 else "",
                )
            except BotError as exc:
                self._count_failure(exc)
                part = AnswerPart.failed(texts(exc.phrase))
            except Exception:
                log.exception("answering a picture failed")
                self.bot.metrics.count_failed()
                part = AnswerPart.failed(texts(UNEXPECTED))
            if part is None:
                log.info("no anime face in picture %d of message %s", number, message_id)
            else:
                part.number = number
                parts.append(part)
        return parts

    @staticmethod
    async def _reply(message: discord.Message, payload: dict[str, Any]) -> None:
        try:
            await message.reply(mention_author=False, **payload)
        except discord.HTTPException as exc:
            log.warning("could not reply in channel %s: %s", message.channel.id, exc)

    def _count_failure(self, exc: BotError) -> None:
        if isinstance(exc, BusyError):
            self.bot.metrics.count_busy()
        else:
            self.bot.metrics.count_failed()
        log.info("picture not answered: %s", exc.user_message)

    async def _linked_pictures(self, interaction: discord.Interaction, link: str) -> list[str]:
        """The pictures of the message ``link`` names (in this server, in a channel the asker
        can read), or the picture a direct link names (the fetcher checks its host)."""
        match = MESSAGE_LINK.search(link)
        if match is None:
            if link.startswith(("https://", "http://")):
                return [link]
            raise FetchError(NOT_A_LINK)
        server, channel_id, message_id = match.group(1), int(match.group(2)), int(match.group(3))
        if server != str(interaction.guild_id or "@me"):
            raise FetchError(LINK_ELSEWHERE)
        try:
            channel = self.bot.get_channel(channel_id) or await self.bot.fetch_channel(channel_id)
            if not isinstance(channel, discord.abc.Messageable):
                raise FetchError(CANNOT_READ_CHANNEL)
            member = interaction.user
            if (
                isinstance(channel, discord.abc.GuildChannel)
                and isinstance(member, discord.Member)
                and not channel.permissions_for(member).read_message_history
            ):
                raise FetchError(CANNOT_SEE_MESSAGE)
            message = await channel.fetch_message(message_id)
        except (discord.NotFound, discord.Forbidden) as exc:
            raise FetchError(CANNOT_SEE_MESSAGE) from exc
        return message_pictures(message)

    @app_commands.command(name="identify", description="Name the anime characters in a picture")
    @app_commands.describe(
        image="a picture to look at",
        link="or a link to a message with one",
        guess="show my best guess even when I find no anime face",
    )
    async def identify(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment | None = None,
        link: str | None = None,
        guess: bool = False,
    ) -> None:
        """Like a post in a watched channel, but on demand and anywhere; a picture without an
        anime face gets a plain "no anime face" (or, asked for, the best guess)."""

        async def pictures() -> list[str]:
            if image is not None:
                return [image.url]
            if link:
                return await self._linked_pictures(interaction, link)
            raise FetchError(NOTHING_TO_IDENTIFY)

        with self.bot.answering():
            await self._identify(interaction, pictures, guess)

    async def identify_message(
        self, interaction: discord.Interaction, message: discord.Message
    ) -> None:
        """Apps → "Identify characters" on a message: like ``/identify`` with its pictures."""

        async def pictures() -> list[str]:
            return message_pictures(message)

        with self.bot.answering():
            await self._identify(interaction, pictures, guess=False)

    async def _identify(
        self,
        interaction: discord.Interaction,
        pictures: Callable[[], Awaitable[list[str]]],
        guess: bool,
    ) -> None:
        """Answer the pictures ``pictures()`` finds (up to ``MAX_PICTURES_PER_MESSAGE``, one
        reply as for a post), publicly; when none of them gets an answer, only the asker
        is told why."""
        await interaction.response.defer(thinking=True)
        texts = self.bot.catalog.texts(interaction.locale)
        if not self.bot.accepting:
            await self._private_error(interaction, texts(RESTARTING))
            return
        guild_id = interaction.guild_id
        try:
            urls = await pictures()
        except BotError as exc:
            self._count_failure(exc)
            await self._private_error(interaction, texts(exc.phrase))
            return
        parts = await self.answer_pictures(
            urls,
            guild_id=guild_id,
            channel_id=interaction.channel_id or 0,
            message_id=interaction.id,
            author_id=interaction.user.id,
            texts=texts,
            best_guess=guess,
        )
        if not parts:
            await self._private_error(interaction, texts(NO_FACE_TRY_GUESS))
            return
        if all(part.error is not None for part in parts):
            await self._private_error(interaction, parts[0].error or texts(UNEXPECTED))
            return
        names = await self.menu_names(guild_id) if guild_id is not None else {}
        skipped = max(len(urls) - MAX_PICTURES_PER_MESSAGE, 0)
        looked_at = len(urls) - skipped
        await interaction.followup.send(**combine(parts, names, texts, skipped, looked_at))

    @staticmethod
    async def _private_error(interaction: discord.Interaction, message: str) -> None:
        """Tell only the person who asked: the public "thinking…" message goes, and the
        error comes as an ephemeral follow-up (a follow-up would otherwise take the
        deferral's visibility)."""
        with contextlib.suppress(discord.HTTPException):
            await interaction.delete_original_response()
        await interaction.followup.send(embed=error_embed(message), ephemeral=True)


async def setup(bot: AnimeBot) -> None:
    """Register the cog."""
    await bot.add_cog(Recognize(bot))
