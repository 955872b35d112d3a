"""Migration 0003 (watching is opt-in): servers answered everywhere before keep it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.storage.test_migration_0002 import execute, migrate, query

WHEN = "2026-11-30 12:00:00"
ROWS_AT_0002 = [
    "INSERT INTO guild_settings (guild_id, auto_reply, labels_shown, votes_needed, updated_at) "
    f"VALUES (100, true, 3, 2, '{WHEN}'), (200, true, 3, 2, '{WHEN}')",
    "INSERT INTO watched_channels (guild_id, channel_id) VALUES (200, 21)",
]


@pytest.fixture
async def migrated(empty_database_url: str) -> AsyncIterator[str]:
    await migrate(empty_database_url, "0002")
    await execute(empty_database_url, *ROWS_AT_0002)
    await migrate(empty_database_url, "head")
    yield empty_database_url


async def test_a_server_that_named_no_channel_keeps_watching_every_channel(migrated: str) -> None:
    rows = await query(migrated, "SELECT guild_id, watch_all FROM guild_settings ORDER BY 1")
    assert [(guild, bool(watch_all)) for guild, watch_all in rows] == [(100, True), (200, False)]


async def test_nobody_was_welcomed_yet(migrated: str) -> None:
    assert await query(migrated, "SELECT welcomed_at FROM guild_settings") == [(None,), (None,)]


async def test_downgrading_drops_the_new_columns(migrated: str) -> None:
    await migrate(migrated, "0002", down=True)
    assert await query(migrated, "SELECT guild_id FROM guild_settings ORDER BY 1") == [
        (100,),
        (200,),
    ]
