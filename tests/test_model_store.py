"""The model store: models from the database, cached per process, following promotions made
by any process."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import DatabaseUnavailableError
from bot.model_store import ModelStore
from bot.storage.db import Storage
from bot.storage.scope import Scope
from bot.vision.bundle import ModelBundle, load_bundle
from tests.bundles import toy_head
from tests.pictures import tiny_training_run

GUILD = 77
HERE = Scope.of_guild(GUILD)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> ModelBundle:
    return load_bundle(tiny_training_run(tmp_path_factory).bundle)


async def own_version(
    storage: Storage, bundle: ModelBundle, version: str, scope: Scope = HERE
) -> None:
    """Register a head of ``scope`` on the bundle's backbone."""
    head = toy_head(("own a", "own b"), bundle.backbone.embedding_dim)
    await storage.model_versions.register(
        scope,
        version,
        backbone_sha256=bundle.backbone.sha256,
        head=head.to_bytes(),
        labels=head.labels,
        metrics={},
        training_size=2,
    )


async def test_a_model_promoted_by_another_process_is_followed(
    tmp_path: Path, bundle: ModelBundle
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    async with Storage.open(url) as mine, Storage.open(url) as theirs:
        here = ModelStore(mine, tmp_path / "here")
        there = ModelStore(theirs, tmp_path / "there")
        await here.install(bundle)
        await there.follow_changes()
        first = await there.serving(GUILD)
        assert first is not None and first.version == bundle.version

        await own_version(mine, bundle, "own-1")
        await here.promote(HERE, "own-1")
        assert (await there.serving(GUILD)) is first  # cached until it looks

        assert await there.follow_changes()
        followed = await there.serving(GUILD)
        assert followed is not None and followed.version == "own-1"
        assert followed.labels == ("own a", "own b")
        assert not await there.follow_changes()


async def test_a_new_base_model_reaches_every_server_without_its_own(
    storage: Storage, tmp_path: Path, bundle: ModelBundle
) -> None:
    store = ModelStore(storage, tmp_path / "cache")
    await store.install(bundle)
    await store.follow_changes()
    for guild in (1, 2, 3):
        await store.serving(guild)
    await own_version(storage, bundle, "base-2", Scope.BASE)

    await ModelStore(storage, tmp_path / "other").promote(Scope.BASE, "base-2")
    await store.follow_changes()

    for guild in (1, 2, 3):
        served = await store.serving(guild)
        assert served is not None and served.version == "base-2"


async def test_servers_answered_by_the_base_share_its_head(
    storage: Storage, tmp_path: Path, bundle: ModelBundle
) -> None:
    store = ModelStore(storage, tmp_path / "cache")
    await store.install(bundle)

    one, two = await store.serving(1), await store.serving(2)

    assert one is not None and one is two


async def test_the_cache_keeps_at_most_its_size(
    storage: Storage, tmp_path: Path, bundle: ModelBundle
) -> None:
    store = ModelStore(storage, tmp_path / "cache", cache_size=2)
    await store.install(bundle)
    for guild in (1, 2, 3):
        await own_version(storage, bundle, f"own-{guild}", Scope.of_guild(guild))
        await store.promote(Scope.of_guild(guild), f"own-{guild}")

    first = await store.serving(1)
    await store.serving(2)
    await store.serving(3)

    assert len(store._by_scope) == 2
    again = await store.serving(1)
    assert again is not None and again is not first and again.version == "own-1"


async def test_the_backbone_file_is_written_once_and_mended_when_damaged(
    storage: Storage, tmp_path: Path, bundle: ModelBundle
) -> None:
    await ModelStore(storage, tmp_path / "installer").install(bundle)
    store = ModelStore(storage, tmp_path / "cache")

    model = await store.serving(GUILD)
    assert model is not None
    assert model.backbone_path.read_bytes() == bundle.model_path.read_bytes()
    model.backbone_path.write_bytes(b"damaged")

    mended = await ModelStore(storage, tmp_path / "cache").serving(GUILD)
    assert mended is not None
    assert mended.backbone_path.read_bytes() == bundle.model_path.read_bytes()


async def test_while_the_database_is_away_a_new_server_is_answered_by_the_base_model(
    storage: Storage, tmp_path: Path, bundle: ModelBundle, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ModelStore(storage, tmp_path / "cache")
    await store.install(bundle)
    base = await store.base_model()

    async def unavailable(_: Scope) -> None:
        raise DatabaseUnavailableError("the database does not answer")

    monkeypatch.setattr(storage.model_versions, "serving_head", unavailable)

    assert await store.serving(GUILD) is base
