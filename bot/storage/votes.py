"""Votes on faces: one per person per face, turned into training data when enough people agree.

A vote is *held* for a moderator, and does not count, when it contradicts a confident
model (its answer was not "unsure" and scored at least ``CONFIDENT_SCORE``) and the
majority (more of the other counted votes on the face name another label than name
this one, this vote included), or when the caller asks for it, for instance for a
brand-new account. When the distinct people whose counted votes agree on a label reach
the server's ``votes_needed``, the face's crop becomes a training example, exactly
once: every vote on a face locks that face's row first (``SELECT … FOR NO KEY UPDATE``
on PostgreSQL; on SQLite write transactions are serialised), so concurrent votes are
counted one after another.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StorageError
from bot.names import normalise_name
from bot.storage._sql import Sessions, reading, rowcount, writing
from bot.storage.examples import accept_face, accepted_label
from bot.storage.guilds import votes_needed
from bot.storage.images import TopPrediction, top_prediction
from bot.storage.schema import (
    ExampleSource,
    Face,
    Image,
    Vote,
    VoteStatus,
    utcnow,
)

CONFIDENT_SCORE = 0.9
FACE_GONE = "That picture is no longer stored, so it cannot be corrected."


@dataclass(frozen=True)
class VoteOutcome:
    """What a vote (or a moderator's decision) did to a face."""

    face_id: int
    label: str
    status: VoteStatus
    agreeing: int  # distinct people whose counted votes say ``label``
    needed: int
    replaced: bool  # the person had voted for another label before
    accepted_label: str | None  # the face's label in the training data, if it has one
    newly_accepted: bool  # this call made the face training data (or relabelled it)

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
    model_label: str | None
    model_score: float | None
    created_at: datetime


async def counted_votes(
    session: AsyncSession, face_id: int, exclude_user: int | None = None
) -> Counter[str]:
    """Counted votes on ``face_id`` per label (leaving out ``exclude_user``'s)."""
    query = (
        select(Vote.label, func.count())
        .where(Vote.face_id == face_id, Vote.status == VoteStatus.COUNTED)
        .group_by(Vote.label)
    )
    if exclude_user is not None:
        query = query.where(Vote.user_id != exclude_user)
    return Counter({label: count for label, count in await session.execute(query)})


class VoteRepo:
    """Casts votes, applies moderators' decisions and answers rate-limit questions."""

    def __init__(self, sessions: Sessions, confident_score: float = CONFIDENT_SCORE) -> None:
        self._sessions = sessions
        self._confident_score = confident_score

    async def cast(
        self,
        face_id: int,
        user_id: int,
        guild_id: int | None,
        label: str,
        is_confirmation: bool,
        *,
        hold: bool = False,
    ) -> VoteOutcome:
        """Record that ``user_id`` says ``face_id`` is ``label`` (replacing their earlier vote).

        ``is_confirmation`` is True when the person pressed "right" on the model's answer;
        ``hold`` sends the vote to a moderator whatever the votes say. Raises
        ``StorageError`` if the face is no longer stored.
        """
        label = normalise_name(label)
        async with writing(self._sessions) as session:
            image_guild = await self._lock_face(session, face_id)
            needed = await votes_needed(session, image_guild)
            others = await counted_votes(session, face_id, exclude_user=user_id)
            top = await top_prediction(session, face_id)
            status = (
                VoteStatus.HELD
                if hold or self._contradicts(top, label, others)
                else VoteStatus.COUNTED
            )
            vote = await session.scalar(
                select(Vote).where(Vote.face_id == face_id, Vote.user_id == user_id)
            )
            replaced = vote is not None and vote.label != label
            if vote is None:
                vote = Vote(face_id=face_id, user_id=user_id)
                session.add(vote)
            vote.guild_id = guild_id
            vote.label = label
            vote.is_confirmation = is_confirmation
            vote.status = status
            vote.created_at = utcnow()
            await session.flush()

            agreeing = others[label] + (1 if status is VoteStatus.COUNTED else 0)
            current = await accepted_label(session, face_id)
            newly = current is None and status is VoteStatus.COUNTED and agreeing >= needed
            if newly:
                await accept_face(
                    session, face_id, label, source=ExampleSource.VOTE, contributor_id=user_id
                )
                current = label
            return VoteOutcome(face_id, label, status, agreeing, needed, replaced, current, newly)

    async def confirm_by_moderator(
        self, face_id: int, label: str, moderator_id: int
    ) -> VoteOutcome:
        """Make ``label`` the face's training label, whatever the votes say.

        Held votes for ``label`` then count; held votes for anything else are dismissed.
        """
        label = normalise_name(label)
        async with writing(self._sessions) as session:
            image_guild = await self._lock_face(session, face_id)
            held = (Vote.face_id == face_id, Vote.status == VoteStatus.HELD)
            await session.execute(
                update(Vote).where(*held, Vote.label == label).values(status=VoteStatus.COUNTED)
            )
            await session.execute(
                update(Vote).where(*held, Vote.label != label).values(status=VoteStatus.DISMISSED)
            )
            newly = await accepted_label(session, face_id) != label
            await accept_face(
                session, face_id, label, source=ExampleSource.MODERATOR, contributor_id=moderator_id
            )
            tally = await counted_votes(session, face_id)
            return VoteOutcome(
                face_id,
                label,
                VoteStatus.COUNTED,
                tally[label],
                await votes_needed(session, image_guild),
                False,
                label,
                newly,
            )

    async def dismiss_held(self, face_id: int) -> int:
        """Dismiss every held vote on ``face_id`` (a moderator rejected them); returns how many."""
        async with writing(self._sessions) as session:
            return await rowcount(
                session,
                update(Vote)
                .where(Vote.face_id == face_id, Vote.status == VoteStatus.HELD)
                .values(status=VoteStatus.DISMISSED),
            )

    async def held(self, guild_id: int, limit: int = 25) -> list[HeldVote]:
        """Votes in ``guild_id`` waiting for a moderator, oldest first."""
        async with reading(self._sessions) as session:
            votes = list(
                await session.scalars(
                    select(Vote)
                    .where(Vote.guild_id == guild_id, Vote.status == VoteStatus.HELD)
                    .order_by(Vote.created_at, Vote.id)
                    .limit(limit)
                )
            )
            held = []
            for vote in votes:
                answer = await top_prediction(session, vote.face_id)
                held.append(
                    HeldVote(
                        face_id=vote.face_id,
                        user_id=vote.user_id,
                        label=vote.label,
                        model_label=answer.label if answer else None,
                        model_score=answer.score if answer else None,
                        created_at=vote.created_at,
                    )
                )
            return held

    async def recent_count(self, user_id: int, seconds: float) -> int:
        """How many votes ``user_id`` cast (or changed) in the last ``seconds``; for rate limits."""
        since = utcnow() - timedelta(seconds=seconds)
        async with reading(self._sessions) as session:
            count = await session.scalar(
                select(func.count())
                .select_from(Vote)
                .where(Vote.user_id == user_id, Vote.created_at >= since)
            )
            return int(count or 0)

    def _contradicts(self, top: TopPrediction | None, label: str, others: Counter[str]) -> bool:
        """A correction against a confident model that most of the other voters disagree with."""
        # ``others`` leaves out this vote; it agrees with itself, hence the + 1.
        if top is None or label == top.label or not top.is_confident(self._confident_score):
            return False
        disagreeing = sum(others.values()) - others[label]
        return disagreeing > others[label] + 1

    @staticmethod
    async def _lock_face(session: AsyncSession, face_id: int) -> int | None:
        """Lock the face's row until commit and return its image's server; StorageError if gone."""
        row = (
            await session.execute(
                select(Face.id, Image.guild_id)
                .join(Image, Face.image_id == Image.id)
                .where(Face.id == face_id)
                .with_for_update(of=Face, key_share=True)
            )
        ).one_or_none()
        if row is None:
            raise StorageError(FACE_GONE)
        return row.guild_id
