"""The database lock: one holder at a time, across engines (processes), and it expires."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.storage import LockRepo, Storage, create_engine, session_factory

NAME = "training"


@pytest.fixture
async def second_process(engine: AsyncEngine, database_url: str) -> AsyncIterator[LockRepo]:
    """A lock repository with its own engine and pool, as another bot process would have."""
    other = create_engine(database_url)
    yield LockRepo(session_factory(other))
    await other.dispose()


async def test_a_held_lock_cannot_be_taken_by_another_holder(storage: Storage) -> None:
    assert await storage.locks.acquire(NAME, "a", ttl=60)
    assert not await storage.locks.acquire(NAME, "b", ttl=60)


async def test_the_holder_can_renew_its_lock(storage: Storage) -> None:
    assert await storage.locks.acquire(NAME, "a", ttl=60)
    assert await storage.locks.acquire(NAME, "a", ttl=60)


async def test_release_frees_the_lock_for_others(storage: Storage) -> None:
    await storage.locks.acquire(NAME, "a", ttl=60)

    assert await storage.locks.release(NAME, "a")
    assert await storage.locks.acquire(NAME, "b", ttl=60)


async def test_only_the_holder_can_release(storage: Storage) -> None:
    await storage.locks.acquire(NAME, "a", ttl=60)

    assert not await storage.locks.release(NAME, "b")
    assert not await storage.locks.acquire(NAME, "b", ttl=60)


async def test_an_expired_lock_can_be_taken(storage: Storage) -> None:
    assert await storage.locks.acquire(NAME, "a", ttl=0.2)
    await asyncio.sleep(0.3)

    assert await storage.locks.acquire(NAME, "b", ttl=60)
    assert not await storage.locks.release(NAME, "a")


async def test_locks_with_different_names_are_independent(storage: Storage) -> None:
    assert await storage.locks.acquire("training", "a", ttl=60)
    assert await storage.locks.acquire("export", "b", ttl=60)


async def test_two_processes_racing_for_a_free_lock_one_wins(
    storage: Storage, second_process: LockRepo
) -> None:
    for round_ in range(10):
        name = f"race-{round_}"
        won = await asyncio.gather(
            storage.locks.acquire(name, "a", ttl=60),
            second_process.acquire(name, "b", ttl=60),
        )
        assert sorted(won) == [False, True]


async def test_many_holders_racing_for_an_expired_lock_one_wins(
    storage: Storage, second_process: LockRepo
) -> None:
    await storage.locks.acquire(NAME, "dead", ttl=0.1)
    await asyncio.sleep(0.2)

    won = await asyncio.gather(
        *(
            (storage.locks if i % 2 else second_process).acquire(NAME, f"holder-{i}", ttl=60)
            for i in range(8)
        )
    )

    assert sum(won) == 1


async def test_holders_lists_the_live_holders_of_locks_with_a_prefix(storage: Storage) -> None:
    await storage.locks.acquire("training:1", "a/run1", ttl=60)
    await storage.locks.acquire("training:2", "b/run2", ttl=0.1)
    await storage.locks.acquire("export", "c", ttl=60)
    await asyncio.sleep(0.2)

    assert await storage.locks.holders("training:") == {"a/run1"}
    assert await storage.locks.holders("training_") == set()  # the prefix is not a pattern
