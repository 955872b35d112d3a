"""What is stored about one person, and removing it (a moderator's purge, ``/forgetme``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from bot.storage._sql import Sessions, reading, rowcount, writing
from bot.storage.guilds import votes_needed
from bot.storage.schema import (
    Character,
    ExampleSource,
    Face,
    Image,
    TrainingExample,
    TrainingRun,
    Vote,
    VoteStatus,
)
from bot.storage.scope import Scope
from bot.storage.votes import counted_votes


@dataclass(frozen=True)
class UserData:
    """How much is stored about one person, or how much of it was removed."""

    votes: int = 0
    held_votes: int = 0
    examples: int = 0  # examples they taught or confirmed, or whose label their vote supports
    images: int = 0  # pictures they posted


def _owned_by(
    user_column: QueryableAttribute[int],
    guild_column: QueryableAttribute[int | None],
    user_id: int,
    guild_id: int | None,
) -> list[ColumnElement[bool]]:
    """Rows of ``user_id`` in ``guild_id`` (None: in every server)."""
    scope = [user_column == user_id]
    if guild_id is not None:
        scope.append(guild_column == guild_id)
    return scope


class UserDataRepo:
    """Shows and removes everything one person contributed."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def contributions(self, user_id: int, guild_id: int) -> UserData:
        """What ``user_id`` contributed in server ``guild_id``."""
        votes = self._vote_scope(user_id, guild_id)
        async with reading(self._sessions) as session:
            vote_count = await session.scalar(select(func.count()).select_from(Vote).where(*votes))
            held = await session.scalar(
                select(func.count()).select_from(Vote).where(*votes, Vote.status == VoteStatus.HELD)
            )
            own = await session.scalars(
                select(TrainingExample.id).where(
                    TrainingExample.contributor_id == user_id, *self._example_scope(guild_id)
                )
            )
            supported = await session.execute(self._supported_examples(user_id, guild_id))
            images = await session.scalar(
                select(func.count()).select_from(Image).where(*self._image_scope(user_id, guild_id))
            )
            return UserData(
                votes=int(vote_count or 0),
                held_votes=int(held or 0),
                examples=len(set(own) | {example_id for example_id, _, _ in supported}),
                images=int(images or 0),
            )

    async def purge_user(self, user_id: int, guild_id: int) -> UserData:
        """Remove the training contributions of ``user_id`` in ``guild_id`` (a moderator's purge).

        Deletes their votes and the examples they taught or confirmed. An example made by
        votes stays only if it still has enough agreeing votes without theirs.
        """
        async with writing(self._sessions) as session:
            return await self._remove_contributions(session, user_id, guild_id)

    async def forget_user(self, user_id: int) -> UserData:
        """Delete everything stored about ``user_id`` everywhere (``/forgetme``).

        Their contributions go as in ``purge_user``, and so do the pictures they posted
        (with their faces, votes and training examples); their id is cleared elsewhere.
        """
        async with writing(self._sessions) as session:
            removed = await self._remove_contributions(session, user_id, None)
            faces = select(Face.id).join(Image, Face.image_id == Image.id)
            faces = faces.where(Image.author_id == user_id)
            examples = await rowcount(
                session, delete(TrainingExample).where(TrainingExample.face_id.in_(faces))
            )
            images = await rowcount(session, delete(Image).where(Image.author_id == user_id))
            await session.execute(
                update(Character).where(Character.created_by == user_id).values(created_by=None)
            )
            await session.execute(
                update(TrainingRun)
                .where(TrainingRun.requested_by == user_id)
                .values(requested_by=None)
            )
            return UserData(
                votes=removed.votes,
                held_votes=removed.held_votes,
                examples=removed.examples + examples,
                images=images,
            )

    async def _remove_contributions(
        self, session: AsyncSession, user_id: int, guild_id: int | None
    ) -> UserData:
        supported = (await session.execute(self._supported_examples(user_id, guild_id))).all()
        votes = self._vote_scope(user_id, guild_id)
        held = await session.scalar(
            select(func.count()).select_from(Vote).where(*votes, Vote.status == VoteStatus.HELD)
        )
        vote_count = await rowcount(session, delete(Vote).where(*votes))
        examples = await rowcount(
            session,
            delete(TrainingExample).where(
                TrainingExample.contributor_id == user_id,
                TrainingExample.source != ExampleSource.VOTE,
                *self._example_scope(guild_id),
            ),
        )
        for example_id, face_id, label in supported:
            image_guild = await session.scalar(
                select(Image.guild_id)
                .join(Face, Face.image_id == Image.id)
                .where(Face.id == face_id)
            )
            tally = await counted_votes(session, face_id)
            if tally[label] < await votes_needed(session, image_guild):
                examples += await rowcount(
                    session, delete(TrainingExample).where(TrainingExample.id == example_id)
                )
        # Examples that stay no longer name them as the contributor.
        await session.execute(
            update(TrainingExample)
            .where(TrainingExample.contributor_id == user_id, *self._example_scope(guild_id))
            .values(contributor_id=None)
        )
        return UserData(votes=vote_count, held_votes=int(held or 0), examples=examples)

    @staticmethod
    def _vote_scope(user_id: int, guild_id: int | None) -> list[ColumnElement[bool]]:
        return _owned_by(Vote.user_id, Vote.guild_id, user_id, guild_id)

    @staticmethod
    def _image_scope(user_id: int, guild_id: int | None) -> list[ColumnElement[bool]]:
        return _owned_by(Image.author_id, Image.guild_id, user_id, guild_id)

    @staticmethod
    def _example_scope(guild_id: int | None) -> list[ColumnElement[bool]]:
        return [] if guild_id is None else [TrainingExample.scope_id == Scope.of_guild(guild_id).id]

    def _supported_examples(self, user_id: int, guild_id: int | None) -> Select[int, int, str]:
        """(example id, face id, label) of vote-made examples the user's counted vote supports."""
        return (
            select(TrainingExample.id, Vote.face_id, Character.key)
            .join(Character, TrainingExample.character_id == Character.id)
            .join(
                Vote,
                (Vote.face_id == TrainingExample.face_id) & (Vote.label == Character.key),
            )
            .where(
                TrainingExample.source == ExampleSource.VOTE,
                Vote.status == VoteStatus.COUNTED,
                *self._vote_scope(user_id, guild_id),
            )
        )
