"""The model store: models from the database, cached per process, following promotions made
by any process."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest

from bot.errors import DatabaseUnavailableError
from bot.model_store import GalleryRows, ModelStore
from bot.storage.db import Storage
from bot.storage.scope import Scope
from bot.vision.bundle import ModelBundle, load_bundle
from bot.vision.head import Head, SharedGallery, UnsureRule
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


# ---------------------------------------------------------------------------------------------
# Gallery rows shared between heads
# ---------------------------------------------------------------------------------------------


def server_head(base_rows: np.ndarray, own: int, seed: int, dim: int = 16) -> Head:
    """A head like a server's: the base's gallery rows (labels 0–2) and ``own`` rows of its
    own (label 3), in the order a refit gives them."""
    rng = np.random.default_rng(seed)
    mine = rng.normal(size=(own, dim)).astype(np.float32)
    mine /= np.linalg.norm(mine, axis=1, keepdims=True)
    gallery = np.concatenate([base_rows[:2], mine, base_rows[2:]])
    labels = np.concatenate([[0, 1], np.full(own, 3), np.arange(2, len(base_rows)) % 3])
    return Head(
        labels=("a", "b", "c", "own"),
        weights=rng.normal(size=(dim, 4)).astype(np.float32),
        bias=rng.normal(size=4).astype(np.float32),
        gallery=gallery,
        gallery_labels=labels.astype(np.int64),
        top_k=2,
        unsure=UnsureRule(0.5),
    )


@pytest.fixture
def base_rows() -> np.ndarray:
    rows = np.random.default_rng(1).normal(size=(9, 16)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_heads_with_rows_in_common_hold_them_once_and_score_the_same(
    base_rows: np.ndarray,
) -> None:
    pool = GalleryRows()
    first, second = server_head(base_rows, 3, seed=2), server_head(base_rows, 4, seed=3)
    shared_first, shared_second = pool.share(first), pool.share(second)

    assert len(pool) == 9 + 3 + 4
    assert isinstance(shared_second.gallery, SharedGallery)
    blocks = [rows for rows, _ in shared_second.gallery.parts]
    assert len(blocks) == 2 and len(blocks[1]) == 4  # the first head's block, and its own rows
    assert isinstance(shared_first.gallery, SharedGallery)
    assert blocks[0] is shared_first.gallery.parts[0][0]
    probes = np.random.default_rng(4).normal(size=(6, 16)).astype(np.float32)
    for plain, shared in ((first, shared_first), (second, shared_second)):
        for got, want in zip(shared.score(probes), plain.score(probes), strict=True):
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        # the gallery as one array: the same rows with the same labels, in another order
        as_rows = {
            (row.tobytes(), int(label))
            for row, label in zip(np.asarray(shared.gallery), shared.gallery_labels, strict=True)
        }
        assert as_rows == {
            (row.tobytes(), int(label))
            for row, label in zip(plain.gallery, plain.gallery_labels, strict=True)
        }
        assert Head.from_bytes(shared.to_bytes()).score(probes)[1] == pytest.approx(
            plain.score(probes)[1], abs=1e-3
        )


def test_rows_no_head_uses_any_more_are_let_go(base_rows: np.ndarray) -> None:
    pool = GalleryRows()
    first = pool.share(server_head(base_rows, 3, seed=2))
    second = pool.share(server_head(base_rows, 4, seed=3))
    del first
    gc.collect()
    assert len(pool) == 9 + 3 + 4  # the second head still uses the first one's block
    del second
    gc.collect()
    assert len(pool) == 0
    again = pool.share(server_head(base_rows, 2, seed=5))
    assert isinstance(again.gallery, SharedGallery) and len(again.gallery.parts) == 1


async def test_servers_own_models_hold_the_rows_they_share_once(
    storage: Storage, tmp_path: Path, bundle: ModelBundle
) -> None:
    dim = bundle.backbone.embedding_dim
    base = np.random.default_rng(6).normal(size=(20, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    store = ModelStore(storage, tmp_path / "cache")
    await store.install(bundle)
    for guild in (1, 2, 3):
        head = server_head(base, 5, seed=guild, dim=dim)
        await storage.model_versions.register(
            Scope.of_guild(guild),
            f"own-{guild}",
            backbone_sha256=bundle.backbone.sha256,
            head=head.to_bytes(),
            labels=head.labels,
            metrics={},
            training_size=25,
        )
        await store.promote(Scope.of_guild(guild), f"own-{guild}")
    served = [await store.serving(guild) for guild in (1, 2, 3)]
    assert len(store.rows) == 20 + 3 * 5  # not 3 × 25 for the three servers
    base = await store.base_model()
    assert base is not None
    assert len(store.rows) == len(bundle.head.gallery) + 20 + 3 * 5
    first = served[0]
    assert first is not None and isinstance(first.head.gallery, SharedGallery)
    for model in served[1:]:
        assert model is not None and isinstance(model.head.gallery, SharedGallery)
        assert model.head.gallery.parts[0][0] is first.head.gallery.parts[0][0]
