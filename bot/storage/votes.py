"""Votes on faces: one per person per face, turned into training data when enough people agree.

A vote is about a face of one server and is cast in that server only. It is *held* for a
moderator, and does not count, when:

- it names another character than a **confident** answer of the model and nobody else
  agrees with it yet (no other person's counted vote, or vote held for the same reason,
  names that character), whatever the server's ``votes_needed``: one person can never
  relabel a confident answer alone. A second person naming the same character releases
  the held vote, and both count;
- it names another character than a confident answer and most of the other counted
  votes name something else;
- the voter's account is new (the caller says so) and the vote disagrees with the model.
  A new account's vote *for* the model's answer counts.

The model's answer is **confident** when the model itself did not flag it "unsure" (its
calibrated rule on familiarity and score, see the README: it flags most untaught
characters) and its top label holds at least ``CONFIDENT_SCORE`` of the probability, so
that no runner-up is close (two look-alikes the model knows both can be familiar and
still split the score).

When the distinct people whose counted votes agree on a character reach the server's
``votes_needed``, the face's crop becomes a training example, exactly once: every vote on
a face locks that face's row first (``SELECT … FOR NO KEY UPDATE`` on PostgreSQL; on
SQLite write transactions are serialised), so concurrent votes are counted one after
another. Labels are stored as keys (``bot.names.normalise_name``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StorageError
from bot.names import display_name, normalise_name
from bot.storage._sql import Sessions, reading, rowcount, writing
from bot.storage.characters import find_visible
from bot.storage.examples import accept_face, accepted_key
from bot.storage.guilds import votes_needed
from bot.storage.images import TopPrediction, top_prediction
from bot.storage.schema import (
    Character,
    ExampleSource,
    Face,
    HoldReason,
    Image,
    TrainingExample,
    Vote,
    VoteStatus,
    utcnow,
)
from bot.storage.scope import Scope

CONFIDENT_SCORE = 0.75
FACE_GONE = "That picture is no longer stored, so it cannot be corrected."


@dataclass(frozen=True)
class VoteOutcome:
    """What a vote (or a moderator's decision) did to a face."""

    face_id: int
    label: str  # the key voted for
    name: str  # how to show it: the character's display name
    status: VoteStatus
    hold_reason: HoldReason | None
    agreeing: int  # distinct people whose counted votes say ``label``
    needed: int
    replaced: bool  # the person had voted for another label before
    accepted_label: str | None  # key of the face's character in the training data, if any
    accepted_name: str | None  # and its display name
    newly_accepted: bool  # this call made the face training data (or relabelled it)
    is_confirmation: bool  # a "right" vote for the model's answer

    @property
    def accepted(self) -> bool:
        """True when the face is training data under this outcome's label."""
        return self.accepted_label == self.label


@dataclass(frozen=True)
class HeldVote:
    """A vote waiting for a moderator, with what the model said about the face."""

    face_id: int
    user_id: int
    label: str
    reason: HoldReason | None
    model_label: str | None
    model_score: float | None
    created_at: datetime


@dataclass(frozen=True)
class HeldFace:
    """A face with votes waiting for a moderator: where it was posted, its crop, the votes."""

    face_id: int
    channel_id: int
    message_id: int
    crop_image: bytes
    votes: tuple[HeldVote, ...]
    accepted_label: str | None = None
    """The character the face is training data for already (other members' votes agreed, or
    a moderator decided), or None."""

    @property
    def leading_label(self) -> str:
        """The label most held votes name (the oldest first on a tie)."""
        return Counter(vote.label for vote in self.votes).most_common(1)[0][0]


@dataclass(frozen=True)
class HeldPage:
    """One page of held faces, and how many faces are held in all."""

    faces: tuple[HeldFace, ...]
    total: int


def is_confident(top: TopPrediction | None) -> bool:
    """Whether the model's answer is confident (see the module's docstring)."""
    return top is not None and not top.unsure and top.score >= CONFIDENT_SCORE


def hold_reason(
    top: TopPrediction | None,
    label: str,
    counted: Counter[str],
    held_as_contradiction: Counter[str],
    *,
    new_account: bool,
) -> HoldReason | None:
    """Why a vote for ``label`` must wait for a moderator, or None if it counts.

    ``counted`` and ``held_as_contradiction`` are the *other* people's votes on the face.
    """
    agrees_with_model = top is not None and label == top.label
    if agrees_with_model:
        return None
    if new_account:
        return HoldReason.NEW_ACCOUNT
    if not is_confident(top):
        return None
    alone = counted[label] + held_as_contradiction[label] == 0
    outvoted = sum(counted.values()) - counted[label] > counted[label] + 1
    return HoldReason.CONTRADICTS_MODEL if alone or outvoted else None


async def _tally(
    session: AsyncSession, face_id: int, status: VoteStatus, exclude_user: int | None = None
) -> Counter[str]:
    query = (
        select(Vote.label, func.count())
        .where(Vote.face_id == face_id, Vote.status == status)
        .group_by(Vote.label)
    )
    if status is VoteStatus.HELD:
        query = query.where(Vote.hold_reason == HoldReason.CONTRADICTS_MODEL)
    if exclude_user is not None:
        query = query.where(Vote.user_id != exclude_user)
    return Counter({label: count for label, count in await session.execute(query)})


async def counted_votes(
    session: AsyncSession, face_id: int, exclude_user: int | None = None
) -> Counter[str]:
    """Counted votes on ``face_id`` per label (leaving out ``exclude_user``'s)."""
    return await _tally(session, face_id, VoteStatus.COUNTED, exclude_user)


async def _shown_name(session: AsyncSession, guild_id: int, label: str) -> str:
    """The display name of ``label`` in the server: its character's, or the label's own."""
    character = await find_visible(session, Scope.of_guild(guild_id), label)
    return character.name if character is not None else display_name(label)


class VoteRepo:
    """Casts votes, applies moderators' decisions and answers rate-limit questions."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def cast(
        self,
        face_id: int,
        user_id: int,
        guild_id: int,
        label: str,
        is_confirmation: bool,
        *,
        new_account: bool = False,
    ) -> VoteOutcome:
        """Record that ``user_id`` says ``face_id`` of server ``guild_id`` is ``label``
        (replacing their earlier vote).

        ``is_confirmation`` is True when the person pressed "right" on the model's answer;
        ``new_account`` holds a vote that disagrees with the model. Raises ``StorageError``
        if the face is not (any more) one of this server's.
        """
        key = normalise_name(label)
        async with writing(self._sessions) as session:
            await self._lock_face(session, face_id, guild_id)
            needed = await votes_needed(session, guild_id)
            others = await counted_votes(session, face_id, exclude_user=user_id)
            held_others = await _tally(session, face_id, VoteStatus.HELD, exclude_user=user_id)
            top = await top_prediction(session, face_id)
            reason = hold_reason(top, key, others, held_others, new_account=new_account)
            status = VoteStatus.HELD if reason else VoteStatus.COUNTED
            vote = await session.scalar(
                select(Vote).where(Vote.face_id == face_id, Vote.user_id == user_id)
            )
            replaced = vote is not None and vote.label != key
            if vote is None:
                vote = Vote(face_id=face_id, user_id=user_id)
                session.add(vote)
            vote.guild_id = guild_id
            vote.label = key
            vote.is_confirmation = is_confirmation
            vote.status = status
            vote.hold_reason = reason
            vote.created_at = utcnow()
            await session.flush()
            if status is VoteStatus.COUNTED and held_others[key]:
                # Someone else said the same before: their held vote is corroborated.
                await session.execute(
                    update(Vote)
                    .where(
                        Vote.face_id == face_id,
                        Vote.label == key,
                        Vote.status == VoteStatus.HELD,
                        Vote.hold_reason == HoldReason.CONTRADICTS_MODEL,
                    )
                    .values(status=VoteStatus.COUNTED, hold_reason=None)
                )
            agreeing = (await counted_votes(session, face_id))[key]
            current = await accepted_key(session, face_id)
            newly = current is None and status is VoteStatus.COUNTED and agreeing >= needed
            if newly:
                character = await accept_face(
                    session, face_id, label, source=ExampleSource.VOTE, contributor_id=user_id
                )
                current = character.key
            name = await _shown_name(session, guild_id, label)
            return VoteOutcome(
                face_id=face_id,
                label=key,
                name=name,
                status=status,
                hold_reason=reason,
                agreeing=agreeing,
                needed=needed,
                replaced=replaced,
                accepted_label=current,
                accepted_name=(
                    None if current is None else await _shown_name(session, guild_id, current)
                ),
                newly_accepted=newly,
                is_confirmation=is_confirmation,
            )

    async def confirm_by_moderator(
        self, face_id: int, guild_id: int, label: str, moderator_id: int
    ) -> VoteOutcome:
        """Make ``label`` the training label of ``face_id`` of server ``guild_id``, whatever
        the votes say. Held votes for ``label`` then count; held votes for anything else are
        dismissed."""
        key = normalise_name(label)
        async with writing(self._sessions) as session:
            await self._lock_face(session, face_id, guild_id)
            held = (Vote.face_id == face_id, Vote.status == VoteStatus.HELD)
            await session.execute(
                update(Vote)
                .where(*held, Vote.label == key)
                .values(status=VoteStatus.COUNTED, hold_reason=None)
            )
            await session.execute(
                update(Vote).where(*held, Vote.label != key).values(status=VoteStatus.DISMISSED)
            )
            newly = await accepted_key(session, face_id) != key
            character = await accept_face(
                session, face_id, label, source=ExampleSource.MODERATOR, contributor_id=moderator_id
            )
            tally = await counted_votes(session, face_id)
            return VoteOutcome(
                face_id=face_id,
                label=key,
                name=character.name,
                status=VoteStatus.COUNTED,
                hold_reason=None,
                agreeing=tally[key],
                needed=await votes_needed(session, guild_id),
                replaced=False,
                accepted_label=character.key,
                accepted_name=character.name,
                newly_accepted=newly,
                is_confirmation=False,
            )

    async def dismiss_held(self, face_id: int, guild_id: int) -> int:
        """Dismiss every held vote on ``face_id`` of server ``guild_id`` (a moderator rejected
        them); returns how many. StorageError if the face is not one of this server's."""
        async with writing(self._sessions) as session:
            await self._lock_face(session, face_id, guild_id)
            return await rowcount(
                session,
                update(Vote)
                .where(Vote.face_id == face_id, Vote.status == VoteStatus.HELD)
                .values(status=VoteStatus.DISMISSED),
            )

    async def held(self, guild_id: int, limit: int = 25) -> list[HeldVote]:
        """Votes in ``guild_id`` waiting for a moderator, oldest first."""
        async with reading(self._sessions) as session:
            return await self._held(session, guild_id, None, limit)

    @staticmethod
    async def _held(
        session: AsyncSession, guild_id: int, face_id: int | None, limit: int | None = None
    ) -> list[HeldVote]:
        """Held votes of ``guild_id`` (of one face, when given), oldest first."""
        query = select(Vote).where(Vote.guild_id == guild_id, Vote.status == VoteStatus.HELD)
        if face_id is not None:
            query = query.where(Vote.face_id == face_id)
        votes = list(await session.scalars(query.order_by(Vote.created_at, Vote.id).limit(limit)))
        held = []
        for vote in votes:
            answer = await top_prediction(session, vote.face_id)
            held.append(
                HeldVote(
                    face_id=vote.face_id,
                    user_id=vote.user_id,
                    label=vote.label,
                    reason=vote.hold_reason,
                    model_label=answer.label if answer else None,
                    model_score=answer.score if answer else None,
                    created_at=vote.created_at,
                )
            )
        return held

    async def held_faces(self, guild_id: int, offset: int, limit: int) -> HeldPage:
        """Faces of ``guild_id`` with held votes, the longest-waiting first: ``limit`` of them
        from ``offset``, each with its crop, its message and its held votes."""
        waiting = (
            select(Vote.face_id, func.min(Vote.created_at).label("since"))
            .where(Vote.guild_id == guild_id, Vote.status == VoteStatus.HELD)
            .group_by(Vote.face_id)
            .subquery()
        )
        async with reading(self._sessions) as session:
            total = int(await session.scalar(select(func.count()).select_from(waiting)) or 0)
            rows = (
                await session.execute(
                    select(
                        Face.id, Face.crop_image, Image.channel_id, Image.message_id, Character.key
                    )
                    .join(waiting, waiting.c.face_id == Face.id)
                    .join(Image, Face.image_id == Image.id)
                    # A face is the training example of one character at most.
                    .outerjoin(TrainingExample, TrainingExample.face_id == Face.id)
                    .outerjoin(Character, TrainingExample.character_id == Character.id)
                    .order_by(waiting.c.since, Face.id)
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            faces = []
            for row in rows:
                votes = await self._held(session, guild_id, row.id)
                faces.append(
                    HeldFace(
                        row.id,
                        row.channel_id,
                        row.message_id,
                        row.crop_image,
                        tuple(votes),
                        row.key,
                    )
                )
            return HeldPage(tuple(faces), total)

    async def recent_count(self, user_id: int, seconds: float) -> int:
        """How many votes ``user_id`` cast (or changed) in the last ``seconds``, in any server;
        for rate limits."""
        since = utcnow() - timedelta(seconds=seconds)
        async with reading(self._sessions) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Vote)
                .where(Vote.user_id == user_id, Vote.created_at >= since)
            )
            return int(count or 0)

    @staticmethod
    async def _lock_face(session: AsyncSession, face_id: int, guild_id: int) -> None:
        """Lock the face's row until commit; StorageError if it is gone or another server's
        (said the same way, so that no server learns which faces another has)."""
        row = (
            await session.execute(
                select(Face.id)
                .join(Image, Face.image_id == Image.id)
                .where(Face.id == face_id, Image.guild_id == guild_id)
                .with_for_update(of=Face, key_share=True)
            )
        ).one_or_none()
        if row is None:
            raise StorageError(FACE_GONE)
