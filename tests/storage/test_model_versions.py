"""Model versions per scope: one active per scope, the scope's own rollback target, the head
serving a server (its own, else the base's), and the serving changes other processes follow."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.errors import StorageError
from bot.storage import ModelVersionInfo, Storage
from bot.storage.schema import ModelVersion
from bot.storage.scope import Scope

BACKBONE = "b" * 64
SERVER = Scope.of_guild(111)
OTHER = Scope.of_guild(222)


async def register(
    storage: Storage, version: str, scope: Scope = Scope.BASE, *, head: bytes | None = b"head"
) -> ModelVersionInfo:
    await storage.backbones.put(BACKBONE, "toy", {"name": "toy"}, b"tflite")
    return await storage.model_versions.register(
        scope,
        version,
        backbone_sha256=BACKBONE if head is not None else None,
        head=head,
        labels=["hoshizora rin", "nishikino maki"],
        metrics={"accuracy": 0.9},
        training_size=40,
        example_ids=[3, 1, 2],
    )


async def active_count(storage: Storage, scope: Scope) -> int:
    async with storage.engine.connect() as connection:
        query = (
            select(func.count())
            .select_from(ModelVersion)
            .where(ModelVersion.is_active, ModelVersion.scope_id == scope.id)
        )
        return int((await connection.execute(query)).scalar_one())


async def test_registered_versions_are_inactive_until_activated(storage: Storage) -> None:
    info = await register(storage, "v1", SERVER)

    assert not info.is_active
    assert info.scope == SERVER
    assert info.labels == ("hoshizora rin", "nishikino maki")
    assert info.metrics == {"accuracy": 0.9}
    assert await storage.model_versions.active(SERVER) is None
    assert await storage.model_versions.get(SERVER, "v1") == info
    assert await storage.model_versions.training_set("v1") == [3, 1, 2]


async def test_a_version_is_not_found_from_another_scope(storage: Storage) -> None:
    await register(storage, "v1", SERVER)

    assert await storage.model_versions.get(OTHER, "v1") is None
    with pytest.raises(StorageError, match="no model version"):
        await storage.model_versions.activate(OTHER, "v1")


async def test_registering_a_version_twice_is_refused(storage: Storage) -> None:
    await register(storage, "v1")

    with pytest.raises(StorageError, match="already registered"):
        await register(storage, "v1")


async def test_activate_keeps_exactly_one_version_active_per_scope(storage: Storage) -> None:
    for version in ("v1", "v2", "v3"):
        await register(storage, version, SERVER)
    await register(storage, "o1", OTHER)
    await storage.model_versions.activate(OTHER, "o1")

    for version in ("v1", "v2", "v3", "v2"):
        activated = await storage.model_versions.activate(SERVER, version)
        assert activated.is_active
        active = await storage.model_versions.active(SERVER)
        assert active is not None and active.version == version
        assert await active_count(storage, SERVER) == 1
    other = await storage.model_versions.active(OTHER)
    assert other is not None and other.version == "o1"


async def test_concurrent_activations_leave_one_active(storage: Storage) -> None:
    for version in ("v1", "v2", "v3", "v4"):
        await register(storage, version, SERVER)

    await asyncio.gather(
        *(storage.model_versions.activate(SERVER, v) for v in ("v1", "v2", "v3", "v4"))
    )

    assert await active_count(storage, SERVER) == 1


async def test_previous_is_the_version_of_the_same_scope_that_served_before(
    storage: Storage,
) -> None:
    for version in ("v1", "v2"):
        await register(storage, version, SERVER)
    await register(storage, "o1", OTHER)
    assert await storage.model_versions.previous(SERVER) is None

    await storage.model_versions.activate(SERVER, "v1")
    await storage.model_versions.activate(OTHER, "o1")
    assert await storage.model_versions.previous(SERVER) is None
    await storage.model_versions.activate(SERVER, "v2")
    previous = await storage.model_versions.previous(SERVER)
    assert previous is not None and previous.version == "v1"

    await storage.model_versions.activate(SERVER, "v1")  # a rollback
    previous = await storage.model_versions.previous(SERVER)
    assert previous is not None and previous.version == "v2"


async def test_a_server_without_its_own_model_is_served_the_base_head(storage: Storage) -> None:
    await register(storage, "base1")
    await register(storage, "own1", SERVER, head=b"own head")
    assert await storage.model_versions.serving_head(SERVER) is None

    await storage.model_versions.activate(Scope.BASE, "base1")
    served = await storage.model_versions.serving_head(SERVER)
    assert served is not None and (served.version, served.scope) == ("base1", Scope.BASE)

    await storage.model_versions.activate(SERVER, "own1")
    served = await storage.model_versions.serving_head(SERVER)
    assert served is not None and (served.version, served.head) == ("own1", b"own head")
    other = await storage.model_versions.serving_head(OTHER)
    assert other is not None and other.version == "base1"


async def test_a_version_without_a_stored_head_never_serves(storage: Storage) -> None:
    await register(storage, "legacy", head=None)
    await storage.model_versions.activate(Scope.BASE, "legacy")

    assert await storage.model_versions.serving_head(SERVER) is None


async def test_deactivating_returns_the_server_to_the_base_model(storage: Storage) -> None:
    await register(storage, "base1")
    await register(storage, "own1", SERVER)
    await storage.model_versions.activate(Scope.BASE, "base1")
    await storage.model_versions.activate(SERVER, "own1")

    stopped = await storage.model_versions.deactivate(SERVER)

    assert stopped is not None and stopped.version == "own1"
    served = await storage.model_versions.serving_head(SERVER)
    assert served is not None and served.version == "base1"
    assert await storage.model_versions.deactivate(SERVER) is None


async def test_every_change_of_a_serving_model_is_logged_in_order(storage: Storage) -> None:
    await register(storage, "base1")
    await register(storage, "own1", SERVER)
    assert await storage.model_versions.last_change() == 0

    await storage.model_versions.activate(Scope.BASE, "base1")
    first = await storage.model_versions.last_change()
    await storage.model_versions.activate(SERVER, "own1")
    await storage.model_versions.deactivate(SERVER)

    changes = await storage.model_versions.changes_since(first)
    assert [(c.scope, c.version) for c in changes] == [(SERVER, "own1"), (SERVER, None)]
    assert await storage.model_versions.last_change() == changes[-1].id


async def test_servers_with_their_own_model_are_counted(storage: Storage) -> None:
    await register(storage, "base1")
    await register(storage, "own1", SERVER)
    await register(storage, "own2", OTHER)
    for scope, version in ((Scope.BASE, "base1"), (SERVER, "own1"), (OTHER, "own2")):
        await storage.model_versions.activate(scope, version)

    assert await storage.model_versions.scopes_with_own_model() == 2
