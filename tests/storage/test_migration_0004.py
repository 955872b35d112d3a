"""Migration 0004 (models in the database): the one model every server used becomes the
base's, and it serves again once installed; taught examples are kept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.storage.test_migration_0002 import execute, migrate, query

WHEN = "2026-11-30 12:00:00"
ROWS_AT_0003 = [
    "INSERT INTO model_versions (id, version, path, created_at, labels, metrics, "
    "training_size, is_active, promoted_at) VALUES "
    f"(1, 'old', '/models/bundles/old', '{WHEN}', '[\"a\", \"b\"]', '{{}}', 10, false, '{WHEN}'),"
    f"(2, 'current', '/models/bundles/current', '{WHEN}', '[\"a\", \"b\"]', '{{}}', 12, true, "
    f"'{WHEN}')",
    "INSERT INTO characters (id, scope_id, key, name, created_at) "
    f"VALUES (1, 5, 'a', 'A', '{WHEN}')",
    "INSERT INTO training_examples (id, character_id, crop_image, source, scope_id, created_at) "
    f"VALUES (1, 1, 'x', 'teach', 5, '{WHEN}')",
]


@pytest.fixture
async def migrated(empty_database_url: str) -> AsyncIterator[str]:
    await migrate(empty_database_url, "0003")
    await execute(empty_database_url, *ROWS_AT_0003)
    await migrate(empty_database_url, "head")
    yield empty_database_url


async def test_existing_versions_become_the_bases_without_a_head(migrated: str) -> None:
    rows = await query(
        migrated, "SELECT version, scope_id, is_active, head FROM model_versions ORDER BY id"
    )
    assert [(v, scope, bool(active), head) for v, scope, active, head in rows] == [
        ("old", 0, False, None),
        ("current", 0, True, None),
    ]


async def test_taught_examples_are_kept(migrated: str) -> None:
    rows = await query(migrated, "SELECT id, scope_id, picture_sha256 FROM training_examples")
    assert rows == [(1, 5, None)]


async def test_downgrading_keeps_the_bases_versions(migrated: str) -> None:
    await migrate(migrated, "0003", down=True)
    rows = await query(migrated, "SELECT version, is_active FROM model_versions ORDER BY id")
    assert [(v, bool(a)) for v, a in rows] == [("old", False), ("current", True)]
