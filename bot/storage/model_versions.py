"""Model versions: which bundle serves, and what ``/rollback`` returns to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from bot.errors import StorageError
from bot.storage._sql import Sessions, insert, reading, writing
from bot.storage.schema import ModelVersion, utcnow


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model bundle."""

    version: str
    path: str
    labels: tuple[str, ...]
    metrics: dict[str, Any]
    training_size: int
    is_active: bool
    created_at: datetime
    promoted_at: datetime | None

    @classmethod
    def of(cls, row: ModelVersion) -> ModelVersionInfo:
        """The value of a ``model_versions`` row."""
        return cls(
            version=row.version,
            path=row.path,
            labels=tuple(row.labels),
            metrics=dict(row.metrics),
            training_size=row.training_size,
            is_active=row.is_active,
            created_at=row.created_at,
            promoted_at=row.promoted_at,
        )


class ModelVersionRepo:
    """Registers model bundles and says which one serves; exactly one is active once any is."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def register(
        self,
        version: str,
        path: str,
        *,
        labels: Sequence[str],
        metrics: dict[str, Any],
        training_size: int,
    ) -> ModelVersionInfo:
        """Record a new (inactive) bundle; StorageError if ``version`` is already registered."""
        async with writing(self._sessions) as session:
            new_id = await session.scalar(
                insert(session, ModelVersion)
                .values(
                    version=version,
                    path=path,
                    labels=list(labels),
                    metrics=metrics,
                    training_size=training_size,
                    is_active=False,
                )
                .on_conflict_do_nothing(index_elements=[ModelVersion.version])
                .returning(ModelVersion.id)
            )
            if new_id is None:
                raise StorageError(f"model version {version!r} is already registered")
            return ModelVersionInfo.of(await session.get_one(ModelVersion, new_id))

    async def activate(self, version: str) -> ModelVersionInfo:
        """Make ``version`` the one that serves (and no other); StorageError if unknown."""
        async with writing(self._sessions) as session:
            # Lock every version row so concurrent activations run one after the other; in id
            # order, so two activations never hold locks the other one waits for (deadlock).
            locked = select(ModelVersion).order_by(ModelVersion.id).with_for_update()
            rows = {row.version: row for row in await session.scalars(locked)}
            target = rows.get(version)
            if target is None:
                raise StorageError(f"there is no model version {version!r}")
            # Deactivate first: the partial unique index allows one active row at any moment.
            await session.execute(
                update(ModelVersion)
                .where(ModelVersion.is_active, ModelVersion.version != version)
                .values(is_active=False)
            )
            target.is_active = True
            target.promoted_at = utcnow()
            await session.flush()
            return ModelVersionInfo.of(target)

    async def active(self) -> ModelVersionInfo | None:
        """The version that serves, or None before the first promotion."""
        async with reading(self._sessions) as session:
            row = await session.scalar(select(ModelVersion).where(ModelVersion.is_active))
            return None if row is None else ModelVersionInfo.of(row)

    async def previous(self) -> ModelVersionInfo | None:
        """The version that served before the active one (what ``/rollback`` returns to).

        That is the most recently promoted inactive version, so rolling back twice returns
        to where it started.
        """
        async with reading(self._sessions) as session:
            row = await session.scalar(
                select(ModelVersion)
                .where(~ModelVersion.is_active, ModelVersion.promoted_at.is_not(None))
                .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
                .limit(1)
            )
            return None if row is None else ModelVersionInfo.of(row)

    async def get(self, version: str) -> ModelVersionInfo | None:
        """The registered version ``version``, or None."""
        async with reading(self._sessions) as session:
            row = await session.scalar(select(ModelVersion).where(ModelVersion.version == version))
            return None if row is None else ModelVersionInfo.of(row)
