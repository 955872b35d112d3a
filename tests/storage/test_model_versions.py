"""Model versions: exactly one active, and the rollback target."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.errors import StorageError
from bot.storage import ModelVersionInfo, Storage
from bot.storage.schema import ModelVersion


async def register(storage: Storage, version: str) -> ModelVersionInfo:
    return await storage.model_versions.register(
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
    assert await storage.model_versions.active() is None
    assert await storage.model_versions.get("v1") == info


async def test_registering_a_version_twice_is_refused(storage: Storage) -> None:
    await register(storage, "v1")

    with pytest.raises(StorageError, match="already registered"):
        await register(storage, "v1")


async def test_activate_keeps_exactly_one_version_active(storage: Storage) -> None:
    for version in ("v1", "v2", "v3"):
        await register(storage, version)

    for version in ("v1", "v2", "v3", "v2"):
        activated = await storage.model_versions.activate(version)
        assert activated.is_active
        active = await storage.model_versions.active()
        assert active is not None and active.version == version
        assert await active_count(storage) == 1


async def test_concurrent_activations_leave_one_active(storage: Storage) -> None:
    for version in ("v1", "v2", "v3", "v4"):
        await register(storage, version)

    await asyncio.gather(*(storage.model_versions.activate(v) for v in ("v1", "v2", "v3", "v4")))

    assert await active_count(storage) == 1


async def test_previous_is_the_version_that_served_before(storage: Storage) -> None:
    for version in ("v1", "v2", "v3"):
        await register(storage, version)
    assert await storage.model_versions.previous() is None

    await storage.model_versions.activate("v1")
    assert await storage.model_versions.previous() is None
    await storage.model_versions.activate("v2")
    previous = await storage.model_versions.previous()
    assert previous is not None and previous.version == "v1"

    await storage.model_versions.activate("v1")  # a rollback
    previous = await storage.model_versions.previous()
    assert previous is not None and previous.version == "v2"


async def test_activating_an_unknown_version_is_refused(storage: Storage) -> None:
    await register(storage, "v1")
    await storage.model_versions.activate("v1")

    with pytest.raises(StorageError, match="no model version"):
        await storage.model_versions.activate("v9")
    active = await storage.model_versions.active()
    assert active is not None and active.version == "v1"
