"""Named locks held in the database, shared by every process that uses it.

Acquiring is one atomic statement, ``INSERT … ON CONFLICT (name) DO UPDATE … WHERE``
the lock has expired or is already ours, on SQLite and PostgreSQL alike: of two
processes racing for a free lock exactly one gets a row back. A holder that dies
loses the lock when its time to live runs out; a live holder renews it by acquiring
again before then. A holder names one owner (one training run, say), never a process:
two owners in one process must not share a holder, or each would take the other's lock.
Expiry uses the callers' clocks, so processes sharing a lock should keep their clocks in
sync (NTP) and use a time to live well above any skew.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_, select

from bot.storage._sql import Sessions, insert, reading, rowcount, writing
from bot.storage.schema import Lock, utcnow


class LockRepo:
    """Acquires and releases named, expiring locks (for instance "one training at a time")."""

    def __init__(self, sessions: Sessions) -> None:
        self._sessions = sessions

    async def acquire(self, name: str, holder: str, ttl: float) -> bool:
        """Take lock ``name`` for ``ttl`` seconds; True if ``holder`` now holds it.

        Succeeds when the lock is free, expired, or already held by ``holder`` (which
        renews it).
        """
        now = utcnow()
        async with writing(self._sessions) as session:
            statement = insert(session, Lock).values(
                name=name, holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=ttl)
            )
            statement = statement.on_conflict_do_update(
                index_elements=[Lock.name],
                set_={
                    "holder": statement.excluded.holder,
                    "acquired_at": statement.excluded.acquired_at,
                    "expires_at": statement.excluded.expires_at,
                },
                where=or_(Lock.expires_at <= now, Lock.holder == holder),
            )
            won = await session.scalar(statement.returning(Lock.name))
            return won is not None

    async def holders(self, prefix: str) -> set[str]:
        """Who holds the locks whose name starts with ``prefix`` (expired ones left out)."""
        async with reading(self._sessions) as session:
            held = await session.scalars(
                select(Lock.holder).where(
                    Lock.name.startswith(prefix, autoescape=True), Lock.expires_at > utcnow()
                )
            )
            return set(held)

    async def release(self, name: str, holder: str) -> bool:
        """Give up lock ``name`` if ``holder`` holds it; False if it did not."""
        async with writing(self._sessions) as session:
            released = await rowcount(
                session, delete(Lock).where(Lock.name == name, Lock.holder == holder)
            )
            return released > 0
