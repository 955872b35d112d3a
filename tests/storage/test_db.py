"""Engine set-up: SQLite pragmas and file location, health, outages, Storage's lifecycle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

import bot.storage.db as db
from bot.errors import DatabaseUnavailableError
from bot.storage import Storage, create_engine, upgrade_to_head
from tests.postgres import PostgresServer, find_bin_dir, start_server, stop_server
from tests.storage.helpers import GUILD


@pytest.fixture
def backend() -> str:
    """These tests are about SQLite's connection set-up."""
    return "sqlite"


async def pragma(engine: AsyncEngine, name: str) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(text(f"PRAGMA {name}"))).scalar_one()


async def test_sqlite_uses_write_ahead_logging(engine: AsyncEngine) -> None:
    assert await pragma(engine, "journal_mode") == "wal"


async def test_sqlite_enforces_foreign_keys(engine: AsyncEngine) -> None:
    assert await pragma(engine, "foreign_keys") == 1


async def test_sqlite_waits_for_locks_instead_of_failing(engine: AsyncEngine) -> None:
    assert int(await pragma(engine, "busy_timeout")) >= 5000  # type: ignore[call-overload]


async def test_sqlite_file_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "data" / "bot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    finally:
        await engine.dispose()
    assert path.is_file()


async def test_open_migrates_a_new_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'bot.db'}"
    async with Storage.open(url) as storage:
        async with storage.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        assert {"images", "faces", "votes", "training_examples", "locks"} <= set(tables)
        assert await storage.ping()


async def test_unreachable_database_raises_database_unavailable() -> None:
    engine = create_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        storage = Storage(engine)
        assert not await storage.ping()
        with pytest.raises(DatabaseUnavailableError, match="not available"):
            await storage.guilds.get(1)
    finally:
        await engine.dispose()


async def test_a_postgres_server_that_never_answers_is_given_up_on_quickly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held: list[asyncio.StreamWriter] = []

    async def accept_and_say_nothing(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        held.append(writer)  # the connection stays open; no byte is ever sent

    server = await asyncio.start_server(accept_and_say_nothing, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(db, "POSTGRES_CONNECT_TIMEOUT", 0.5)
    engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{port}/none")
    try:
        storage = Storage(engine)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError, match="not available"):
            await storage.guilds.get(1)
        waited = time.monotonic() - started
    finally:
        await engine.dispose()
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()

    assert held, "the engine never connected to the silent server"
    assert waited < 5.0


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server this test may stop and start."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries are not installed")
    server = start_server(bin_dir)
    yield server
    stop_server(server)


async def test_postgres_outage_is_database_unavailable_and_the_engine_recovers(
    own_postgres: PostgresServer,
) -> None:
    url = own_postgres.url(own_postgres.create_database("bot"))
    await upgrade_to_head(url)
    engine = create_engine(url)
    try:
        storage = Storage(engine)
        await storage.guilds.update(GUILD, votes_needed=4)

        await asyncio.to_thread(own_postgres.stop)
        with pytest.raises(DatabaseUnavailableError, match="not available"):
            await storage.guilds.get(GUILD)
        assert not await storage.ping()

        await asyncio.to_thread(own_postgres.start)
        assert (await storage.guilds.get(GUILD)).votes_needed == 4
        assert await storage.ping()
    finally:
        await engine.dispose()
