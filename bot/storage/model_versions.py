"""Model versions per scope: which head serves a server (or the base), and what
``/rollback`` returns to. Every change of a scope's serving model is logged in
``serving_changes`` so that other processes can follow it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import StorageError
from bot.storage._sql import Sessions, insert, reading, writing
from bot.storage.schema import ModelVersion, ServingChange, utcnow
from bot.storage.scope import Scope


@dataclass(frozen=True)
class ModelVersionInfo:
    """A registered model version (without its head's bytes)."""

    version: str
    scope: Scope
    backbone_sha256: str | None
    labels: tuple[str, ...]
    metrics: dict[str, Any]
    info: dict[str, Any]
    training_size: int
    is_active: bool
    created_at: datetime
    promoted_at: datetime | None
    path: str | None

    @property
    def servable(self) -> bool:
        """False for a version registered before models were stored in the database."""
        return self.backbone_sha256 is not None

    @classmethod
    def of(cls, row: ModelVersion) -> ModelVersionInfo:
        """The value of a ``model_versions`` row."""
        return cls(
            version=row.version,
            scope=Scope(row.scope_id),
            backbone_sha256=row.backbone_sha256 if row.head is not None else None,
            labels=tuple(row.labels),
            metrics=dict(row.metrics),
            info=dict(row.info or {}),
            training_size=row.training_size,
            is_active=row.is_active,
            created_at=row.created_at,
            promoted_at=row.promoted_at,
            path=row.path,
        )


@dataclass(frozen=True)
class StoredHead:
    """What serving a version needs: its head's bytes and its backbone."""

    version: str
    scope: Scope
    backbone_sha256: str
    head: bytes


@dataclass(frozen=True)
class ServingChangeRow:
    """One change of a scope's serving model."""

    id: int
    scope: Scope
    version: str | None


class ModelVersionRepo:
    """Registers model versions of each scope and says which one serves it."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def register(
        self,
        scope: Scope,
        version: str,
        *,
        backbone_sha256: str | None,
        head: bytes | None,
        labels: Sequence[str],
        metrics: dict[str, Any],
        training_size: int,
        example_ids: Sequence[int] | None = None,
        info: dict[str, Any] | None = None,
        path: str | None = None,
    ) -> ModelVersionInfo:
        """Record a new (inactive) version of ``scope``; StorageError if ``version`` exists."""
        async with writing(self._sessions) as session:
            new_id = await session.scalar(
                insert(session, ModelVersion)
                .values(
                    version=version,
                    scope_id=scope.id,
                    path=path,
                    backbone_sha256=backbone_sha256,
                    head=head,
                    example_ids=None if example_ids is None else list(example_ids),
                    info=info,
                    labels=list(labels),
                    metrics=metrics,
                    training_size=training_size,
                    is_active=False,
                )
                .on_conflict_do_nothing(index_elements=[ModelVersion.version])
                .returning(ModelVersion.id)
            )
            if new_id is None:
                raise StorageError("model version {version} is already registered", version=version)
            return ModelVersionInfo.of(await session.get_one(ModelVersion, new_id))

    async def activate(self, scope: Scope, version: str) -> ModelVersionInfo:
        """Make ``version`` the one that serves ``scope`` (and no other of it); StorageError
        if the scope has no such version."""
        async with writing(self._sessions) as session:
            rows = await self._lock_scope(session, scope)
            target = rows.get(version)
            if target is None:
                raise StorageError("there is no model version {version} here", version=version)
            # Deactivate first: the partial unique index allows one active row per scope.
            await session.execute(
                update(ModelVersion)
                .where(
                    ModelVersion.scope_id == scope.id,
                    ModelVersion.is_active,
                    ModelVersion.version != version,
                )
                .values(is_active=False)
            )
            target.is_active = True
            target.promoted_at = utcnow()
            session.add(ServingChange(scope_id=scope.id, version=version))
            await session.flush()
            return ModelVersionInfo.of(target)

    async def deactivate(self, scope: Scope) -> ModelVersionInfo | None:
        """Stop serving ``scope``'s own model (a server is then answered by the base model);
        returns the version that served, or None if none did."""
        async with writing(self._sessions) as session:
            rows = await self._lock_scope(session, scope)
            active = next((row for row in rows.values() if row.is_active), None)
            if active is None:
                return None
            active.is_active = False
            session.add(ServingChange(scope_id=scope.id, version=None))
            await session.flush()
            return ModelVersionInfo.of(active)

    @staticmethod
    async def _lock_scope(session: AsyncSession, scope: Scope) -> dict[str, ModelVersion]:
        # Lock the scope's version rows so concurrent changes of one scope run one after the
        # other; in id order, so two of them never hold locks the other waits for (deadlock).
        locked = (
            select(ModelVersion)
            .where(ModelVersion.scope_id == scope.id)
            .order_by(ModelVersion.id)
            .with_for_update()
        )
        return {row.version: row for row in await session.scalars(locked)}

    async def active(self, scope: Scope) -> ModelVersionInfo | None:
        """The version that serves ``scope`` itself, or None (for a server: the base serves)."""
        async with reading(self._sessions) as session:
            row = await session.scalar(
                select(ModelVersion).where(
                    ModelVersion.scope_id == scope.id, ModelVersion.is_active
                )
            )
            return None if row is None else ModelVersionInfo.of(row)

    async def serving_head(self, scope: Scope) -> StoredHead | None:
        """The head serving ``scope``: its own active version, else the base's (a version
        without a head in the database cannot serve); None when neither has one."""
        scopes = [scope.id] if scope.is_base else [scope.id, Scope.BASE.id]
        async with reading(self._sessions) as session:
            rows = (
                await session.execute(
                    select(
                        ModelVersion.version,
                        ModelVersion.scope_id,
                        ModelVersion.backbone_sha256,
                        ModelVersion.head,
                    ).where(
                        ModelVersion.scope_id.in_(scopes),
                        ModelVersion.is_active,
                        ModelVersion.head.is_not(None),
                        ModelVersion.backbone_sha256.is_not(None),
                    )
                )
            ).all()
        if not rows:
            return None
        row = min(rows, key=lambda r: scopes.index(r.scope_id))
        return StoredHead(row.version, Scope(row.scope_id), row.backbone_sha256, row.head)

    async def previous(self, scope: Scope) -> ModelVersionInfo | None:
        """The version of ``scope`` that served before the active one (what ``/rollback``
        returns to): the most recently promoted inactive one that can serve, so rolling back
        twice returns to where it started."""
        async with reading(self._sessions) as session:
            row = await session.scalar(
                select(ModelVersion)
                .where(
                    ModelVersion.scope_id == scope.id,
                    ~ModelVersion.is_active,
                    ModelVersion.promoted_at.is_not(None),
                    ModelVersion.head.is_not(None),
                )
                .order_by(ModelVersion.promoted_at.desc(), ModelVersion.id.desc())
                .limit(1)
            )
            return None if row is None else ModelVersionInfo.of(row)

    async def get(self, scope: Scope, version: str) -> ModelVersionInfo | None:
        """Version ``version`` of ``scope``, or None (another scope's is never returned)."""
        async with reading(self._sessions) as session:
            row = await session.scalar(
                select(ModelVersion).where(
                    ModelVersion.scope_id == scope.id, ModelVersion.version == version
                )
            )
            return None if row is None else ModelVersionInfo.of(row)

    async def training_set(self, version: str) -> list[int] | None:
        """The ids of the examples version ``version`` was trained on (None if unknown)."""
        async with reading(self._sessions) as session:
            ids = await session.scalar(
                select(ModelVersion.example_ids).where(ModelVersion.version == version)
            )
            return None if ids is None else [int(i) for i in ids]

    async def scopes_with_own_model(self) -> int:
        """How many servers are served by a model of their own (for the bot's owners)."""
        async with reading(self._sessions) as session:
            count = await session.scalar(
                select(func.count()).where(
                    ModelVersion.is_active, ModelVersion.scope_id != Scope.BASE.id
                )
            )
            return int(count or 0)

    async def last_change(self) -> int:
        """The id of the latest serving change (0 before any): cheap to poll."""
        async with reading(self._sessions) as session:
            return int(await session.scalar(select(func.max(ServingChange.id))) or 0)

    async def changes_since(self, change_id: int) -> list[ServingChangeRow]:
        """Serving changes after ``change_id``, oldest first."""
        async with reading(self._sessions) as session:
            rows = await session.execute(
                select(ServingChange.id, ServingChange.scope_id, ServingChange.version)
                .where(ServingChange.id > change_id)
                .order_by(ServingChange.id)
            )
            return [ServingChangeRow(r.id, Scope(r.scope_id), r.version) for r in rows]
