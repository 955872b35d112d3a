"""Engines, sessions, migrations, and ``Storage``: the database as the rest of the bot sees it."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

from bot.storage._sql import WRITE_OPTION, Sessions
from bot.storage.backbones import BackboneRepo
from bot.storage.characters import CharacterRepo
from bot.storage.examples import TrainingExampleRepo
from bot.storage.guilds import GuildSettingsRepo
from bot.storage.images import ImageRepo
from bot.storage.locks import LockRepo
from bot.storage.model_versions import ModelVersionRepo
from bot.storage.runs import TrainingRunRepo
from bot.storage.stats import StatsRepo
from bot.storage.users import UserDataRepo
from bot.storage.votes import VoteRepo

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 15_000
POSTGRES_CONNECT_TIMEOUT = 10.0
"""Seconds PostgreSQL has to accept a connection. A server that hangs rather than refusing
would otherwise hold every reply that touches the database for asyncpg's default 60 s."""


def _sqlite_file(url: URL) -> Path | None:
    """The file an SQLite URL points at, or None for an in-memory database."""
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(url: str, *, sqlite_foreign_keys: bool = True) -> AsyncEngine:
    """An async engine for ``url`` (``sqlite+aiosqlite://…`` or ``postgresql+asyncpg://…``).

    SQLite: the file's directory is created, and every connection gets WAL, foreign keys
    (unless ``sqlite_foreign_keys`` is False, as migrations need) and a busy timeout;
    transactions that write start with ``BEGIN IMMEDIATE``. PostgreSQL: pooled
    connections are checked before use, so the bot recovers when the server comes back,
    and a server that does not answer is given up on after ``POSTGRES_CONNECT_TIMEOUT``.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if parsed.get_driver_name() == "asyncpg":
            connect_args["timeout"] = POSTGRES_CONNECT_TIMEOUT
        return _create_async_engine(parsed, pool_pre_ping=True, connect_args=connect_args)

    path = _sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = _create_async_engine(parsed)

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # With WAL, NORMAL syncs at checkpoints rather than every commit: a committed
        # transaction survives the process being killed (only a power cut can lose the last
        # few), and each answered picture no longer waits for an fsync.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute(f"PRAGMA foreign_keys = {'ON' if sqlite_foreign_keys else 'OFF'}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        # A writer takes the write lock at once: upgrading a read snapshot to a write
        # later fails with SQLITE_BUSY instead of waiting for the busy timeout.
        # Transactions that do not say (migrations, say) are treated as writers.
        write = connection.get_execution_options().get(WRITE_OPTION, True)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def session_factory(engine: AsyncEngine) -> Sessions:
    """Sessions on ``engine`` whose objects stay readable after commit."""
    return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    """The Alembic configuration for this repository's migrations, aimed at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


async def upgrade_to_head(url: str) -> None:
    """Apply every pending migration to the database at ``url`` (the bot calls it on start)."""
    log.info("migrating the database to the newest schema")
    # Alembic's commands are synchronous and run their own event loop in env.py.
    await asyncio.to_thread(_upgrade, alembic_config(url))


# Alembic keeps the running migration's context in module globals, so two commands in
# one process at once (two Storage.open calls, say) must take turns. Separate processes
# are serialised by the database itself (see migrations/env.py).
_alembic_lock = threading.Lock()


def _upgrade(config: Config) -> None:
    with _alembic_lock:
        command.upgrade(config, "head")


class Storage:
    """The engine and one repository per concern; ``async with Storage.open(url)`` owns it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        sessions = session_factory(engine)
        self.guilds = GuildSettingsRepo(sessions)
        self.characters = CharacterRepo(sessions)
        self.images = ImageRepo(sessions)
        self.votes = VoteRepo(sessions)
        self.examples = TrainingExampleRepo(sessions)
        self.users = UserDataRepo(sessions)
        self.model_versions = ModelVersionRepo(sessions)
        self.backbones = BackboneRepo(sessions)
        self.runs = TrainingRunRepo(sessions)
        self.locks = LockRepo(sessions)
        self.stats = StatsRepo(sessions)

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, migrate: bool = True) -> AsyncIterator[Storage]:
        """Migrate the database at ``url`` to head (unless told not to) and connect to it."""
        if migrate:
            await upgrade_to_head(url)
        engine = create_engine(url)
        try:
            yield cls(engine)
        finally:
            await engine.dispose()

    async def ping(self) -> bool:
        """True if the database answers (for health checks)."""
        try:
            async with self.engine.connect() as connection:
                await connection.execution_options(**{WRITE_OPTION: False})
                await connection.execute(text("SELECT 1"))
        except Exception:
            log.warning("the database does not answer", exc_info=True)
            return False
        return True
