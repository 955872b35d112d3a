"""Training and model faults: a server's serving model never changes to a broken one, and
the admin is told what happened.

- the refit process killed mid-run, or the training cancelled (the bot stopping);
- the disk filling up while a backbone is written to the local cache;
- a model whose head does not fit its backbone.
"""

from __future__ import annotations

import asyncio
import errno
import multiprocessing
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import discord
import pytest

from bot.cogs.models import Models
from bot.errors import BundleError, TrainingError
from bot.model_store import ModelStore
from bot.service import RecognitionService
from bot.storage.db import Storage
from bot.storage.schema import RunStatus
from bot.storage.scope import Scope
from bot.training import TrainingManager, lock_name
from tests.bundles import toy_head
from tests.cogs import GUILD, fake_bot, fake_interaction, invoke
from tests.e2e.bundle import face_png, install_base_model, taught_crops
from tests.pictures import Character

WAIT_STEPS = 600  # × 0.05 s
NEW = Character("char_d", hair=(40, 200, 60), eyes=(200, 40, 200))


@pytest.fixture
async def base(trained_bundle: Path, tmp_path: Path, storage: Storage) -> str:
    """The trained bundle installed as the base model of the test's database."""
    url = str(storage.engine.url)
    return await install_base_model(trained_bundle, url, tmp_path / "installer", with_data=True)


@pytest.fixture
def store(storage: Storage, tmp_path: Path) -> ModelStore:
    return ModelStore(storage, tmp_path / "models")


@pytest.fixture
def service(store: ModelStore) -> Iterator[RecognitionService]:
    service = RecognitionService(store, workers=1, queue_size=2)
    yield service
    service.close()


async def assert_still_served_by(service: RecognitionService, version: str) -> None:
    """The server is answered, and by model ``version``."""
    answer = await service.recognize(face_png(), GUILD)
    assert answer.recognition.faces
    assert answer.recognition.model_version == version


async def teach(storage: Storage) -> None:
    for crop in await asyncio.to_thread(taught_crops, NEW, 5):
        await storage.examples.add_taught(Scope.of_guild(GUILD), "Char D", crop, 1)


async def no_progress(_: str) -> None:
    return None


async def refit_process() -> multiprocessing.Process:
    """The refit process the test process started (spawned for the training)."""
    for _ in range(WAIT_STEPS):
        if children := multiprocessing.active_children():
            return children[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no refit process started")


@pytest.mark.parametrize("how", ["sigkill", "cancel"])
async def test_a_training_stopped_mid_run_leaves_the_serving_model_and_a_failed_run(
    base: str,
    storage: Storage,
    store: ModelStore,
    service: RecognitionService,
    how: str,
) -> None:
    await teach(storage)
    manager = TrainingManager(storage, store, fake_bot(storage, store.cache_dir).settings)
    retrain = asyncio.create_task(manager.retrain(1, GUILD, no_progress))
    process = await refit_process()

    if how == "sigkill":
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)
        with pytest.raises(TrainingError) as stopped:
            await retrain
        said = stopped.value.user_message
        assert "The training process stopped unexpectedly" in said
    else:
        retrain.cancel()
        with pytest.raises(asyncio.CancelledError):
            await retrain
        said = "interrupted: the bot stopped during the training"

    run = await storage.runs.latest(GUILD)
    assert run is not None and (run.status, run.message) == (RunStatus.FAILED, said)
    assert await storage.model_versions.active(Scope.of_guild(GUILD)) is None
    assert await storage.locks.acquire(lock_name(GUILD), "another bot", 60), "the lock was kept"
    await assert_still_served_by(service, base)


async def test_a_full_disk_for_the_backbone_cache_is_a_clear_error(
    base: str, storage: Storage, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_: object, **__: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("bot.model_store._write_atomically", full)

    with pytest.raises(BundleError, match="No space left on device"):
        await store.serving(GUILD)
    assert not (store.cache_dir / "backbones").exists() or not any(
        (store.cache_dir / "backbones").iterdir()
    )


async def test_a_head_that_does_not_fit_its_backbone_is_never_served(
    base: str, storage: Storage, store: ModelStore
) -> None:
    active = await storage.model_versions.active(Scope.BASE)
    assert active is not None and active.backbone_sha256 is not None
    head = toy_head(("a", "b"), dim=3)
    await storage.model_versions.register(
        Scope.of_guild(GUILD),
        "misfit",
        backbone_sha256=active.backbone_sha256,
        head=head.to_bytes(),
        labels=head.labels,
        metrics={},
        training_size=2,
    )
    await store.promote(Scope.of_guild(GUILD), "misfit")

    with pytest.raises(BundleError, match="embeddings of 3 numbers"):
        await store.serving(GUILD)


async def test_a_retrain_whose_process_dies_tells_the_admin(
    base: str, storage: Storage, store: ModelStore, service: RecognitionService
) -> None:
    await teach(storage)
    bot = fake_bot(storage, store.cache_dir)
    bot.models = store
    bot.training = TrainingManager(storage, store, bot.settings, instance="test:1")
    cog = Models(bot)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))
    status = interaction.followup.send.return_value  # type: ignore[attr-defined]

    async def killer() -> None:
        process = await refit_process()
        assert process.pid is not None
        os.kill(process.pid, signal.SIGKILL)

    kill = asyncio.create_task(killer())
    await invoke(cog, "retrain", interaction)
    await kill

    final = status.edit.await_args.kwargs["content"]
    assert final.startswith("Training stopped. The training process stopped unexpectedly")
    await assert_still_served_by(service, base)
