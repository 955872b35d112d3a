"""Transactions and dialect-specific statements shared by the repositories."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Executable
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import DatabaseUnavailableError, StorageError

log = logging.getLogger(__name__)

Sessions = async_sessionmaker[AsyncSession]

# Execution option read by the SQLite "begin" listener in db.py: write transactions
# take the write lock up front (BEGIN IMMEDIATE), so a transaction that reads and
# then writes waits for the lock instead of failing on a stale snapshot.
WRITE_OPTION = "animebot_write"

UNAVAILABLE = "The database is not available right now; please try again in a moment."


@asynccontextmanager
async def transaction(sessions: Sessions, *, write: bool) -> AsyncIterator[AsyncSession]:
    """One session in one transaction, committed on success and rolled back on error.

    Driver and connection failures become ``DatabaseUnavailableError`` with a message fit
    for users.
    """
    try:
        async with sessions() as session, session.begin():
            await session.connection(execution_options={WRITE_OPTION: write})
            yield session
    except (sa_exc.DBAPIError, sa_exc.TimeoutError, OSError) as exc:
        log.warning("database operation failed: %s", exc.__class__.__name__, exc_info=True)
        raise DatabaseUnavailableError(UNAVAILABLE) from exc


def reading(sessions: Sessions) -> AbstractAsyncContextManager[AsyncSession]:
    """A read-only transaction (``async with reading(sessions) as session``)."""
    return transaction(sessions, write=False)


def writing(sessions: Sessions) -> AbstractAsyncContextManager[AsyncSession]:
    """A read-write transaction (``async with writing(sessions) as session``)."""
    return transaction(sessions, write=True)


def insert(session: AsyncSession, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``on_conflict_do_nothing/update`` for the session's database."""
    return dialect_insert(session.get_bind().dialect.name, table)


def dialect_insert(dialect: str, table: Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT with ``on_conflict_do_nothing/update`` for the database ``dialect``."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise StorageError(
        "unsupported database {dialect}: use SQLite or PostgreSQL", dialect=repr(dialect)
    )


async def rowcount(session: AsyncSession, statement: Executable) -> int:
    """Execute an UPDATE or DELETE and return how many rows it touched."""
    result = await session.execute(statement)
    return int(cast("CursorResult[Any]", result).rowcount)
