"""Answered pictures: the image, its faces (with their crops) and the model's ranked labels."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Executable, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from bot.names import normalise_name
from bot.storage._sql import Sessions, dialect_insert, reading, writing
from bot.storage.schema import Face, Image, Prediction


@dataclass(frozen=True)
class LabelScore:
    """One label the model gave a face, with its score."""

    label: str
    score: float


@dataclass(frozen=True)
class FaceRecord:
    """A face to store: its box, the crop exactly as classified, and the labels, best first."""

    box: tuple[int, int, int, int]
    detector: str
    crop_image: bytes
    scores: Sequence[LabelScore]
    unsure: bool


@dataclass(frozen=True)
class RecordedImage:
    """Ids of a stored image and its faces (main face first); ``created`` is False on a retry."""

    image_id: int
    face_ids: tuple[int, ...]
    created: bool


@dataclass(frozen=True)
class StoredFace:
    """A stored face and what the model said about it."""

    id: int
    image_id: int
    guild_id: int | None
    channel_id: int
    message_id: int
    position: int
    box: tuple[int, int, int, int]
    model_version: str | None
    scores: tuple[LabelScore, ...]
    unsure: bool


@dataclass(frozen=True)
class TopPrediction:
    """The model's answer for a face (its rank-0 label)."""

    label: str
    score: float
    unsure: bool


async def top_prediction(session: AsyncSession, face_id: int) -> TopPrediction | None:
    """The model's answer for ``face_id``, or None if no prediction was stored."""
    row = (
        await session.execute(
            select(Prediction.label, Prediction.score, Prediction.unsure)
            .where(Prediction.face_id == face_id, Prediction.rank == 0)
            .order_by(Prediction.id)
            .limit(1)
        )
    ).one_or_none()
    return None if row is None else TopPrediction(row.label, row.score, row.unsure)


@dataclass(frozen=True)
class _RecordStatements:
    image: Executable
    faces: Executable
    predictions: Executable


@functools.cache
def _statements_for(dialect: str) -> _RecordStatements:
    images, faces = Image.__table__, Face.__table__
    return _RecordStatements(
        image=dialect_insert(dialect, images)
        .on_conflict_do_nothing(index_elements=[images.c.message_id, images.c.sha256])
        .returning(images.c.id),
        faces=dialect_insert(dialect, faces).returning(faces.c.id, sort_by_parameter_order=True),
        predictions=dialect_insert(dialect, Prediction.__table__),
    )


def _record_statements(session: AsyncSession) -> _RecordStatements:
    return _statements_for(session.get_bind().dialect.name)


class ImageRepo:
    """Stores answered pictures and reads their faces back."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def record(
        self,
        *,
        sha256: str,
        width: int,
        height: int,
        guild_id: int | None,
        channel_id: int,
        message_id: int,
        author_id: int,
        model_version: str,
        faces: Sequence[FaceRecord],
    ) -> RecordedImage:
        """Store an image, its faces (in prominence order) and their predictions in one transaction.

        Recording the same picture of the same message again (a retry, a replayed event)
        stores nothing and returns the ids stored the first time.
        """
        # Core statements on the session's connection, built once per database: this runs
        # for every answered picture, and ORM objects, or even ORM bulk inserts, cost the
        # event loop several times what the statements themselves do.
        async with writing(self._sessions) as session:
            statements = _record_statements(session)
            connection = await session.connection()
            image_id = (
                await connection.execute(
                    statements.image,
                    {
                        "sha256": sha256,
                        "width": width,
                        "height": height,
                        "guild_id": guild_id,
                        "channel_id": channel_id,
                        "message_id": message_id,
                        "author_id": author_id,
                    },
                )
            ).scalar()
            if image_id is None:
                return await self._existing(session, message_id, sha256)
            face_ids: list[int] = []
            if faces:
                rows = [
                    {
                        "image_id": image_id,
                        "position": position,
                        "x": face.box[0],
                        "y": face.box[1],
                        "w": face.box[2],
                        "h": face.box[3],
                        "detector": face.detector,
                        "crop_image": face.crop_image,
                    }
                    for position, face in enumerate(faces)
                ]
                face_ids = list((await connection.execute(statements.faces, rows)).scalars())
            predictions = [
                {
                    "face_id": face_id,
                    "model_version": model_version,
                    "label": normalise_name(scored.label),
                    "score": scored.score,
                    "rank": rank,
                    "unsure": face.unsure,
                }
                for face_id, face in zip(face_ids, faces, strict=True)
                for rank, scored in enumerate(face.scores)
            ]
            if predictions:
                await connection.execute(statements.predictions, predictions)
            return RecordedImage(image_id, tuple(face_ids), created=True)

    async def face(self, face_id: int, guild_id: int) -> StoredFace | None:
        """The face ``face_id`` of server ``guild_id`` with its ranked labels, or None if it is
        not stored (any more) or is another server's."""
        async with reading(self._sessions) as session:
            row = (
                await session.execute(
                    select(Face, Image)
                    .join(Image, Face.image_id == Image.id)
                    .where(Face.id == face_id, Image.guild_id == guild_id)
                    .options(defer(Face.crop_image))
                )
            ).one_or_none()
            if row is None:
                return None
            face, image = row
            predictions = list(
                await session.scalars(
                    select(Prediction).where(Prediction.face_id == face_id).order_by(Prediction.id)
                )
            )
        # Normally one model answered the face; if several did, the first answer is the one shown.
        version = predictions[0].model_version if predictions else None
        ranked = sorted(
            (p for p in predictions if p.model_version == version), key=lambda p: p.rank
        )
        return StoredFace(
            id=face.id,
            image_id=image.id,
            guild_id=image.guild_id,
            channel_id=image.channel_id,
            message_id=image.message_id,
            position=face.position,
            box=(face.x, face.y, face.w, face.h),
            model_version=version,
            scores=tuple(LabelScore(p.label, p.score) for p in ranked),
            unsure=bool(ranked) and ranked[0].unsure,
        )

    @staticmethod
    async def _existing(session: AsyncSession, message_id: int, sha256: str) -> RecordedImage:
        image_id = (
            await session.scalars(
                select(Image.id).where(Image.message_id == message_id, Image.sha256 == sha256)
            )
        ).one()
        face_ids = await session.scalars(
            select(Face.id).where(Face.image_id == image_id).order_by(Face.position)
        )
        return RecordedImage(image_id, tuple(face_ids), created=False)
