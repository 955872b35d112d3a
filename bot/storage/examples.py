"""Training examples: the confirmed (label, face crop) pairs the trainer learns from."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage._sql import Sessions, reading, writing
from bot.storage.characters import character_id
from bot.storage.schema import Character, ExampleSource, Face, Image, TrainingExample


async def accepted_label(session: AsyncSession, face_id: int) -> str | None:
    """The label under which ``face_id`` is training data, or None if it is not."""
    return await session.scalar(
        select(Character.name)
        .join(TrainingExample, TrainingExample.character_id == Character.id)
        .where(TrainingExample.face_id == face_id)
    )


async def accept_face(
    session: AsyncSession,
    face_id: int,
    label: str,
    *,
    source: ExampleSource,
    contributor_id: int | None,
) -> None:
    """Make the crop of ``face_id`` a training example of ``label`` (or relabel its example)."""
    char_id = await character_id(session, label, created_by=contributor_id)
    example = await session.scalar(
        select(TrainingExample).where(TrainingExample.face_id == face_id)
    )
    if example is None:
        crop_image, guild_id = (
            await session.execute(
                select(Face.crop_image, Image.guild_id)
                .join(Image, Face.image_id == Image.id)
                .where(Face.id == face_id)
            )
        ).one()
        session.add(
            TrainingExample(
                character_id=char_id,
                crop_image=crop_image,
                source=source,
                face_id=face_id,
                contributor_id=contributor_id,
                guild_id=guild_id,
            )
        )
    else:
        example.character_id = char_id
        example.source = source
        example.contributor_id = contributor_id
    await session.flush()


class TrainingExampleRepo:
    """Adds taught examples and reads the whole dataset for training and export."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add_taught(
        self, character: str, crop_image: bytes, contributor_id: int, guild_id: int | None
    ) -> int:
        """Store a face crop a moderator labelled directly (``/teach``); returns its id."""
        async with writing(self._sessions) as session:
            example = TrainingExample(
                character_id=await character_id(session, character, created_by=contributor_id),
                crop_image=crop_image,
                source=ExampleSource.TEACH,
                contributor_id=contributor_id,
                guild_id=guild_id,
            )
            session.add(example)
            await session.flush()
            return example.id

    async def iter_dataset(self, batch_size: int = 64) -> AsyncIterator[tuple[str, bytes]]:
        """Every example as (label, PNG bytes), oldest first.

        Read in batches, each in its own short transaction, so a slow consumer (an export,
        a trainer) never holds the database.
        """
        last_id = 0
        while True:
            async with reading(self._sessions) as session:
                rows = (
                    await session.execute(
                        select(TrainingExample.id, Character.name, TrainingExample.crop_image)
                        .join(Character, TrainingExample.character_id == Character.id)
                        .where(TrainingExample.id > last_id)
                        .order_by(TrainingExample.id)
                        .limit(batch_size)
                    )
                ).all()
            if not rows:
                return
            for row in rows:
                yield row.name, row.crop_image
            last_id = rows[-1].id

    async def counts(self) -> dict[str, int]:
        """How many examples each character has (characters without any are left out)."""
        async with reading(self._sessions) as session:
            rows = await session.execute(
                select(Character.name, func.count(TrainingExample.id))
                .join(TrainingExample, TrainingExample.character_id == Character.id)
                .group_by(Character.name)
                .order_by(Character.name)
            )
            return {name: count for name, count in rows}
