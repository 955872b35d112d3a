"""Every storage test runs on a real SQLite file and on a real PostgreSQL server.

The schema comes from the migrations, applied once per backend: SQLite tests get a copy
of a migrated file; PostgreSQL tests share one migrated database whose tables are
emptied before each test (far cheaper than a database per test).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import Storage, create_engine, upgrade_to_head
from bot.storage.schema import Base
from tests.postgres import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head, to copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    asyncio.run(upgrade_to_head(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_at_head(postgres_server: PostgresServer) -> str:
    """The URL of a PostgreSQL database migrated to head, shared by the tests."""
    url = postgres_server.url(postgres_server.create_database("storage"))
    asyncio.run(upgrade_to_head(url))
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The kind of database under test."""
    return str(request.param)


@pytest.fixture
def empty_database_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[str]:
    """The URL of a new, empty database (no tables) of the backend under test."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.create_database()
    yield server.url(name)
    server.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """The URL of a database at head of the backend under test (maybe not empty)."""
    if backend == "sqlite":
        target = tmp_path / "bot.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        return f"sqlite+aiosqlite:///{target}"
    return str(request.getfixturevalue("postgres_at_head"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database at head, disposed after the test."""
    engine = create_engine(database_url)
    if engine.dialect.name == "postgresql":
        tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    yield engine
    await engine.dispose()


@pytest.fixture
def storage(engine: AsyncEngine) -> Storage:
    """Every repository on a fresh database at head."""
    return Storage(engine)
