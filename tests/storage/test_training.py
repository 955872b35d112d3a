"""Model versions (exactly one active, rollback target) and training runs."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.errors import StorageError
from bot.storage import ModelVersionInfo, RunStatus, Storage
from bot.storage.models import ModelVersion


async def register(storage: Storage, version: str) -> ModelVersionInfo:
    return await storage.models.register(
        version,
        f"/models/{version}",
        labels=["hoshizora rin", "nishikino maki"],
        metrics={"accuracy": 0.9},
        training_size=40,
    )


async def active_count(storage: Storage) -> int:
    async with storage.engine.connect() as connection:
        query = select(func.count()).select_from(ModelVersion).where(ModelVersion.is_active)
        return int((await connection.execute(query)).scalar_one())


async def test_registered_versions_are_inactive_until_activated(storage: Storage) -> None:
    info = await register(storage, "v1")

    assert not info.is_active
    assert info.labels == ("hoshizora rin", "nishikino maki")
    assert info.metrics == {"accuracy": 0.9}
    assert await storage.models.active() is None
    assert await storage.models.get("v1") == info


async def test_registering_a_version_twice_is_refused(storage: Storage) -> None:
    await register(storage, "v1")

    with pytest.raises(StorageError, match="already registered"):
        await register(storage, "v1")


async def test_activate_keeps_exactly_one_version_active(storage: Storage) -> None:
    for version in ("v1", "v2", "v3"):
        await register(storage, version)

    for version in ("v1", "v2", "v3", "v2"):
        activated = await storage.models.activate(version)
        assert activated.is_active
        active = await storage.models.active()
        assert active is not None and active.version == version
        assert await active_count(storage) == 1


async def test_concurrent_activations_leave_one_active(storage: Storage) -> None:
    for version in ("v1", "v2", "v3", "v4"):
        await register(storage, version)

    await asyncio.gather(*(storage.models.activate(v) for v in ("v1", "v2", "v3", "v4")))

    assert await active_count(storage) == 1


async def test_previous_is_the_version_that_served_before(storage: Storage) -> None:
    for version in ("v1", "v2", "v3"):
        await register(storage, version)
    assert await storage.models.previous() is None

    await storage.models.activate("v1")
    assert await storage.models.previous() is None
    await storage.models.activate("v2")
    previous = await storage.models.previous()
    assert previous is not None and previous.version == "v1"

    await storage.models.activate("v1")  # a rollback
    previous = await storage.models.previous()
    assert previous is not None and previous.version == "v2"


async def test_activating_an_unknown_version_is_refused(storage: Storage) -> None:
    await register(storage, "v1")
    await storage.models.activate("v1")

    with pytest.raises(StorageError, match="no model version"):
        await storage.models.activate("v9")
    active = await storage.models.active()
    assert active is not None and active.version == "v1"


async def test_a_training_run_from_start_to_finish(storage: Storage) -> None:
    run_id = await storage.runs.start(guild_id=1, requested_by=2)
    started = await storage.runs.get(run_id)
    assert started is not None and started.status is RunStatus.RUNNING

    finished = await storage.runs.finish(
        run_id,
        RunStatus.REJECTED,
        message="the candidate is worse",
        candidate_version="v2",
        metrics={"accuracy": 0.5},
    )

    assert finished.status is RunStatus.REJECTED
    assert finished.finished_at is not None and finished.finished_at >= finished.started_at
    assert (finished.candidate_version, finished.metrics) == ("v2", {"accuracy": 0.5})
    assert await storage.runs.latest() == finished


async def test_a_run_cannot_finish_as_running(storage: Storage) -> None:
    run_id = await storage.runs.start(guild_id=None, requested_by=None)

    with pytest.raises(ValueError, match="finished run"):
        await storage.runs.finish(run_id, RunStatus.RUNNING)
