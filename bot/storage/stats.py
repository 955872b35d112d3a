"""Figures for ``/stats``: what was answered and corrected, and how often the model was right."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, func, select

from bot.storage._sql import Sessions, reading
from bot.storage.schema import (
    Character,
    Face,
    Image,
    Prediction,
    TrainingExample,
    Vote,
    VoteStatus,
)
from bot.storage.scope import Scope


@dataclass(frozen=True)
class Stats:
    """Counts for one server and the model's accuracy as judged by its users."""

    images: int
    faces: int
    votes: int
    corrections: int  # votes saying the model was wrong
    held: int  # votes waiting for a moderator
    training_examples: int
    confirmed_faces: int  # faces whose agreed label is the model's answer
    corrected_faces: int  # faces whose agreed label is something else

    @property
    def accuracy(self) -> float | None:
        """Share of faces with an agreed label that the model got right (None before any)."""
        judged = self.confirmed_faces + self.corrected_faces
        return self.confirmed_faces / judged if judged else None


class StatsRepo:
    """Computes ``Stats``."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def collect(self, guild_id: int) -> Stats:
        """The figures of server ``guild_id`` (nothing of any other server is counted)."""
        scope = Scope.of_guild(guild_id)
        votes = select(func.count()).select_from(Vote).where(Vote.guild_id == guild_id)
        # Faces the users judged (their crop is training data, by votes or a moderator),
        # and among them those whose agreed label is the model's answer.
        judged = (
            select(func.count(TrainingExample.id), func.count(Prediction.id))
            .join(Character, TrainingExample.character_id == Character.id)
            .outerjoin(
                Prediction,
                and_(
                    Prediction.face_id == TrainingExample.face_id,
                    Prediction.rank == 0,
                    Prediction.label == Character.key,
                ),
            )
            .where(TrainingExample.face_id.is_not(None), TrainingExample.scope_id == scope.id)
        )
        async with reading(self._sessions) as session:

            async def count(query: Select[int]) -> int:
                return int(await session.scalar(query) or 0)

            images = await count(
                select(func.count()).select_from(Image).where(Image.guild_id == guild_id)
            )
            faces = await count(
                select(func.count(Face.id))
                .join(Image, Face.image_id == Image.id)
                .where(Image.guild_id == guild_id)
            )
            all_votes = await count(votes)
            corrections = await count(votes.where(~Vote.is_confirmation))
            held = await count(votes.where(Vote.status == VoteStatus.HELD))
            examples = await count(
                select(func.count())
                .select_from(TrainingExample)
                .where(TrainingExample.scope_id == scope.id)
            )
            judged_faces, confirmed = (await session.execute(judged)).one()
        return Stats(
            images=images,
            faces=faces,
            votes=all_votes,
            corrections=corrections,
            held=held,
            training_examples=examples,
            confirmed_faces=confirmed,
            corrected_faces=judged_faces - confirmed,
        )
