"""Migration 0002 (tenancy) on data written under 0001: every row keeps its data and gets its
server; characters used by several servers are split; rows of no server go to the base."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from alembic import command
from sqlalchemy import text

from bot.storage import Storage, create_engine
from bot.storage.db import alembic_config
from bot.storage.scope import Scope

WHEN = "2026-11-30 12:00:00"
ROWS_AT_0001 = [
    "INSERT INTO characters (id, name, created_at, created_by) VALUES "
    f"(1, 'nishikino maki', '{WHEN}', 7), (2, 'hoshizora rin', '{WHEN}', 7), "
    f"(3, 'never used', '{WHEN}', NULL)",
    "INSERT INTO images (id, sha256, width, height, guild_id, channel_id, message_id, author_id,"
    f" created_at) VALUES (1, 'a', 10, 10, 100, 1, 11, 5, '{WHEN}'), "
    f"(2, 'b', 10, 10, 200, 2, 12, 5, '{WHEN}')",
    "INSERT INTO faces (id, image_id, position, x, y, w, h, detector, crop_image, created_at) "
    f"VALUES (1, 1, 0, 0, 0, 5, 5, 'cascade', :crop, '{WHEN}'), "
    f"(2, 2, 0, 0, 0, 5, 5, 'cascade', :crop, '{WHEN}')",
    "INSERT INTO training_examples (id, character_id, crop_image, source, face_id, "
    "contributor_id, guild_id, created_at) VALUES "
    f"(1, 1, :crop, 'vote', 1, 5, 100, '{WHEN}'), (2, 1, :crop, 'vote', 2, 5, 200, '{WHEN}'), "
    f"(3, 2, :crop, 'teach', NULL, 5, 100, '{WHEN}'), "
    f"(4, 1, :crop, 'teach', NULL, 5, NULL, '{WHEN}')",
    # A vote recorded with the server it was clicked in, not its face's.
    "INSERT INTO votes (id, face_id, user_id, guild_id, label, is_confirmation, status, "
    f"created_at) VALUES (1, 2, 5, 100, 'nishikino maki', true, 'counted', '{WHEN}')",
]


async def migrate(url: str, revision: str, *, down: bool = False) -> None:
    step = command.downgrade if down else command.upgrade
    await asyncio.to_thread(step, alembic_config(url), revision)


async def execute(url: str, *statements: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement), {"crop": b"\xff\xd8crop"})
            if connection.dialect.name == "postgresql":
                # The rows above chose their ids; move the sequences past them, as the
                # application's own inserts would have.
                for table in ("characters", "images", "faces", "training_examples", "votes"):
                    await connection.execute(
                        text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                    )
    finally:
        await engine.dispose()


async def query(url: str, statement: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(statement))]
    finally:
        await engine.dispose()


@pytest.fixture
async def migrated(empty_database_url: str) -> AsyncIterator[str]:
    """A database with rows written under 0001, then migrated to head."""
    await migrate(empty_database_url, "0001")
    await execute(empty_database_url, *ROWS_AT_0001)
    await migrate(empty_database_url, "head")
    yield empty_database_url


async def test_each_server_gets_its_own_copy_of_a_shared_character(migrated: str) -> None:
    async with Storage.open(migrated, migrate=False) as storage:
        assert await storage.examples.counts(Scope.of_guild(100)) == {
            "hoshizora rin": 1,
            "nishikino maki": 1,
        }
        assert await storage.examples.counts(Scope.of_guild(200)) == {"nishikino maki": 1}
        assert await storage.characters.names(Scope.of_guild(200)) == ["nishikino maki"]


async def test_rows_of_no_server_go_to_the_base(migrated: str) -> None:
    async with Storage.open(migrated, migrate=False) as storage:
        assert await storage.examples.counts(Scope.BASE) == {"nishikino maki": 1}
        assert await storage.characters.names(Scope.BASE) == ["never used", "nishikino maki"]


async def test_every_example_keeps_its_crop_and_names_a_character_of_its_own_scope(
    migrated: str,
) -> None:
    rows = await query(
        migrated,
        "SELECT e.id, e.scope_id, c.scope_id, c.key, e.crop_image FROM training_examples e "
        "JOIN characters c ON c.id = e.character_id ORDER BY e.id",
    )

    assert [(r[0], r[1], r[3]) for r in rows] == [
        (1, 100, "nishikino maki"),
        (2, 200, "nishikino maki"),
        (3, 100, "hoshizora rin"),
        (4, 0, "nishikino maki"),
    ]
    assert all(r[1] == r[2] and bytes(r[4]) == b"\xff\xd8crop" for r in rows)  # type: ignore[arg-type]


async def test_a_vote_gets_the_server_of_its_face(migrated: str) -> None:
    assert await query(migrated, "SELECT guild_id, hold_reason FROM votes") == [(200, None)]


async def test_downgrading_merges_the_copies_back(migrated: str) -> None:
    await migrate(migrated, "0001", down=True)

    characters = await query(migrated, "SELECT id, name FROM characters ORDER BY id")
    examples = await query(
        migrated, "SELECT id, character_id, guild_id FROM training_examples ORDER BY id"
    )

    assert characters == [(1, "nishikino maki"), (2, "hoshizora rin"), (3, "never used")]
    assert examples == [(1, 1, 100), (2, 1, 200), (3, 2, 100), (4, 1, None)]
