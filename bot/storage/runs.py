"""Training runs: who retrained, and how it went."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bot.errors import StorageError
from bot.storage._sql import Sessions, reading, writing
from bot.storage.schema import RunStatus, TrainingRun, utcnow

FINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.REJECTED})


@dataclass(frozen=True)
class TrainingRunInfo:
    """One training run."""

    id: int
    guild_id: int | None
    requested_by: int | None
    status: RunStatus
    started_at: datetime
    finished_at: datetime | None
    message: str | None
    candidate_version: str | None
    metrics: dict[str, Any] | None

    @classmethod
    def of(cls, row: TrainingRun) -> TrainingRunInfo:
        """The value of a ``training_runs`` row."""
        return cls(
            id=row.id,
            guild_id=row.guild_id,
            requested_by=row.requested_by,
            status=row.status,
            started_at=row.started_at,
            finished_at=row.finished_at,
            message=row.message,
            candidate_version=row.candidate_version,
            metrics=row.metrics,
        )


class TrainingRunRepo:
    """Records training runs from start to finish."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def start(self, guild_id: int | None, requested_by: int | None) -> int:
        """Record that a training run started now; returns its id."""
        async with writing(self._sessions) as session:
            row = TrainingRun(
                guild_id=guild_id, requested_by=requested_by, status=RunStatus.RUNNING
            )
            session.add(row)
            await session.flush()
            return row.id

    async def finish(
        self,
        run_id: int,
        status: RunStatus,
        *,
        message: str | None = None,
        candidate_version: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> TrainingRunInfo:
        """Record how run ``run_id`` ended (succeeded, failed or rejected)."""
        if status not in FINAL_STATUSES:
            raise ValueError(f"a finished run cannot be {status.value!r}")
        async with writing(self._sessions) as session:
            row = await session.get(TrainingRun, run_id)
            if row is None:
                raise StorageError("there is no training run {run}", run=run_id)
            row.status = status
            row.finished_at = utcnow()
            row.message = message
            row.candidate_version = candidate_version
            row.metrics = metrics
            await session.flush()
            return TrainingRunInfo.of(row)

    async def get(self, run_id: int, guild_id: int) -> TrainingRunInfo | None:
        """The run ``run_id`` of server ``guild_id``, or None."""
        async with reading(self._sessions) as session:
            row = await session.get(TrainingRun, run_id)
            if row is None or row.guild_id != guild_id:
                return None
            return TrainingRunInfo.of(row)

    async def latest(self, guild_id: int) -> TrainingRunInfo | None:
        """The most recently started run of server ``guild_id``, or None."""
        async with reading(self._sessions) as session:
            row = await session.scalar(
                select(TrainingRun)
                .where(TrainingRun.guild_id == guild_id)
                .order_by(TrainingRun.started_at.desc(), TrainingRun.id.desc())
                .limit(1)
            )
            return None if row is None else TrainingRunInfo.of(row)
