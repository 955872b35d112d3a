"""Training examples: the confirmed (character, face crop) pairs the trainer learns from.

Every method takes the scope whose examples it reads or adds; a face becomes an example
of its own picture's server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Executable, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StorageError
from bot.storage._sql import Sessions, insert, reading, writing
from bot.storage.characters import CharacterInfo, character_for
from bot.storage.schema import (
    Character,
    ExampleEmbedding,
    ExampleSource,
    Face,
    Image,
    TrainingExample,
)
from bot.storage.scope import Scope

NOT_IN_A_SERVER = "A picture answered outside a server cannot become training data."
READ_BATCH = 500


@dataclass(frozen=True)
class ExampleRef:
    """A training example without its picture: what a head refit needs to know of it.

    ``key`` is its character's matching key (the label a head learns); ``group`` keeps
    copies of one picture together in cross-validation (the picture's hash when known).
    """

    id: int
    scope: Scope
    key: str
    name: str
    group: str


async def accepted_key(session: AsyncSession, face_id: int) -> str | None:
    """The key of the character ``face_id`` is training data for, or None if it is not."""
    return await session.scalar(
        select(Character.key)
        .join(TrainingExample, TrainingExample.character_id == Character.id)
        .where(TrainingExample.face_id == face_id)
    )


async def accept_face(
    session: AsyncSession,
    face_id: int,
    name: str,
    *,
    source: ExampleSource,
    contributor_id: int | None,
) -> CharacterInfo:
    """Make the crop of ``face_id`` a training example of the character ``name`` of the
    face's server (created if new), or relabel its example; returns the character."""
    crop_image, guild_id = (
        await session.execute(
            select(Face.crop_image, Image.guild_id)
            .join(Image, Face.image_id == Image.id)
            .where(Face.id == face_id)
        )
    ).one()
    if guild_id is None:
        raise StorageError(NOT_IN_A_SERVER)
    scope = Scope.of_guild(guild_id)
    character = await character_for(session, scope, name, created_by=contributor_id)
    example = await session.scalar(
        select(TrainingExample).where(TrainingExample.face_id == face_id)
    )
    if example is None:
        session.add(
            TrainingExample(
                character_id=character.id,
                crop_image=crop_image,
                source=source,
                face_id=face_id,
                contributor_id=contributor_id,
                scope_id=scope.id,
            )
        )
    else:
        example.character_id = character.id
        example.source = source
        example.contributor_id = contributor_id
    await session.flush()
    return character


class TrainingExampleRepo:
    """Adds taught examples and reads a scope's dataset for training and export."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def add_taught(
        self, scope: Scope, character: str, crop_image: bytes, contributor_id: int | None
    ) -> int:
        """Store a face crop a moderator labelled directly (``/teach``); returns its id."""
        async with writing(self._sessions) as session:
            named = await character_for(session, scope, character, created_by=contributor_id)
            example = TrainingExample(
                character_id=named.id,
                crop_image=crop_image,
                source=ExampleSource.TEACH,
                contributor_id=contributor_id,
                scope_id=scope.id,
            )
            session.add(example)
            await session.flush()
            return example.id

    async def add_imported(
        self, character: str, crop_image: bytes, *, picture_sha256: str, origin: str
    ) -> int | None:
        """Store a face of the base model's training pictures in the base scope; None when
        that picture was imported before (an import is done once)."""
        async with writing(self._sessions) as session:
            known = await session.scalar(
                select(TrainingExample.id).where(
                    TrainingExample.scope_id == Scope.BASE.id,
                    TrainingExample.picture_sha256 == picture_sha256,
                )
            )
            if known is not None:
                return None
            named = await character_for(session, Scope.BASE, character)
            example = TrainingExample(
                character_id=named.id,
                crop_image=crop_image,
                source=ExampleSource.IMPORT,
                scope_id=Scope.BASE.id,
                picture_sha256=picture_sha256,
                origin=origin,
            )
            session.add(example)
            await session.flush()
            return example.id

    async def training_refs(self, scope: Scope) -> list[ExampleRef]:
        """The examples a model of ``scope`` learns from, oldest first: the base's, and for a
        server its own too (its own characters and its corrections of base characters)."""
        scopes = {Scope.BASE.id, scope.id}
        async with reading(self._sessions) as session:
            rows = await session.execute(
                select(
                    TrainingExample.id,
                    TrainingExample.scope_id,
                    TrainingExample.picture_sha256,
                    Character.key,
                    Character.name,
                )
                .join(Character, TrainingExample.character_id == Character.id)
                .where(TrainingExample.scope_id.in_(scopes))
                .order_by(TrainingExample.id)
            )
            return [
                ExampleRef(
                    row.id,
                    Scope(row.scope_id),
                    row.key,
                    row.name,
                    row.picture_sha256 or str(row.id),
                )
                for row in rows
            ]

    async def crops(self, ids: Iterable[int]) -> dict[int, bytes]:
        """The stored face crops of examples ``ids`` (those that still exist)."""
        return await self._by_id(
            ids,
            lambda batch: select(TrainingExample.id, TrainingExample.crop_image).where(
                TrainingExample.id.in_(batch)
            ),
        )

    async def embeddings(self, backbone_sha256: str, ids: Iterable[int]) -> dict[int, bytes]:
        """The cached embeddings by backbone ``backbone_sha256`` of examples ``ids``."""
        return await self._by_id(
            ids,
            lambda batch: select(ExampleEmbedding.example_id, ExampleEmbedding.features).where(
                ExampleEmbedding.backbone_sha256 == backbone_sha256,
                ExampleEmbedding.example_id.in_(batch),
            ),
        )

    async def _by_id(
        self, ids: Iterable[int], query: Callable[[list[int]], Executable]
    ) -> dict[int, bytes]:
        """``{id: bytes}`` from ``query`` over ``ids`` in batches of ``READ_BATCH`` (each in its
        own short transaction; a long ``IN`` list is refused by some databases)."""
        wanted = sorted(set(ids))
        out: dict[int, bytes] = {}
        for start in range(0, len(wanted), READ_BATCH):
            async with reading(self._sessions) as session:
                rows = await session.execute(query(wanted[start : start + READ_BATCH]))
                out.update({row[0]: row[1] for row in rows})
        return out

    async def store_embeddings(self, backbone_sha256: str, features: Mapping[int, bytes]) -> None:
        """Cache embeddings by backbone ``backbone_sha256`` (an example deleted meanwhile, or
        one cached by another process first, is skipped)."""
        if not features:
            return
        async with writing(self._sessions) as session:
            alive = set(
                await session.scalars(
                    select(TrainingExample.id).where(TrainingExample.id.in_(list(features)))
                )
            )
            values = [
                {"example_id": i, "backbone_sha256": backbone_sha256, "features": data}
                for i, data in features.items()
                if i in alive
            ]
            if values:
                await session.execute(
                    insert(session, ExampleEmbedding)
                    .values(values)
                    .on_conflict_do_nothing(
                        index_elements=[
                            ExampleEmbedding.example_id,
                            ExampleEmbedding.backbone_sha256,
                        ]
                    )
                )

    async def iter_dataset(
        self, scope: Scope, batch_size: int = 64
    ) -> AsyncIterator[tuple[str, bytes]]:
        """Every example of ``scope`` as (display name, picture bytes), oldest first.

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
                        .where(TrainingExample.scope_id == scope.id, TrainingExample.id > last_id)
                        .order_by(TrainingExample.id)
                        .limit(batch_size)
                    )
                ).all()
            if not rows:
                return
            for row in rows:
                yield row.name, row.crop_image
            last_id = rows[-1].id

    async def counts(self, scope: Scope) -> dict[str, int]:
        """How many examples each character of ``scope`` has, by display name (characters
        without any are left out)."""
        async with reading(self._sessions) as session:
            rows = await session.execute(
                select(Character.name, func.count(TrainingExample.id))
                .join(TrainingExample, TrainingExample.character_id == Character.id)
                .where(TrainingExample.scope_id == scope.id)
                .group_by(Character.id, Character.name)
                .order_by(Character.name)
            )
            return {name: count for name, count in rows}
