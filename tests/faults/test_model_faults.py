"""Trainer and model faults: the serving model never changes to a broken one, and the
admin is told what happened.

- the trainer process killed mid-run, or the training cancelled (the bot stopping);
- the disk filling up while a bundle or the ``CURRENT`` pointer is written;
- a damaged bundle promoted by hand, rolled back to, or produced by the trainer.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import logging
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest.mock import create_autospec

import discord
import pytest

from bot.cogs.errors import describe
from bot.cogs.models import Models
from bot.config import Settings
from bot.errors import BundleError, TrainingError
from bot.models import POINTER, ModelStore, check_runnable
from bot.service import RecognitionService
from bot.storage.db import Storage
from bot.storage.schema import RunStatus
from bot.storage.scope import Scope
from bot.training import TrainingManager, is_validation, lock_name
from bot.vision import bundle as bundle_module
from bot.vision.bundle import INFO_FILE, LABELS_FILE, MODEL_FILE, load_bundle, write_bundle
from tests.cogs import GUILD, fake_bot, fake_interaction
from tests.e2e.bundle import face_png, install_bundle
from tests.test_training import LABELS, fake_trainer

BROKEN = "20990101-000000-broken"
WAIT_STEPS = 300  # × 0.05 s
TRAINER_SLEEP = 60  # the fake trainer never gets that far: it is killed first


@pytest.fixture
def store(tmp_path: Path, trained_bundle: Path) -> ModelStore:
    """A model directory serving the trained bundle, which refuses to promote broken ones."""
    store = ModelStore(tmp_path / "models", verify=check_runnable)
    install_bundle(trained_bundle, store.root)
    return store


@pytest.fixture
def serving(store: ModelStore) -> str:
    """The version the model directory serves at the start of a test."""
    version = store.current_version()
    assert version is not None
    return version


@pytest.fixture
def service(store: ModelStore) -> Iterator[RecognitionService]:
    service = RecognitionService(store, workers=1, queue_size=2)
    assert service.refresh()
    yield service
    service.close()


def store_settings(store: ModelStore) -> Settings:
    return Settings(model_dir=store.root)


def snapshot(path: Path) -> dict[str, str]:
    """Each file of a directory tree with the SHA-256 of its bytes."""
    return {
        p.relative_to(path).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


async def assert_still_serving(service: RecognitionService, version: str) -> None:
    """The service did not swap models, and its model still names faces."""
    assert not await asyncio.to_thread(service.refresh)
    assert service.model_version == version
    answer = await service.recognize(face_png())
    assert answer.recognition.faces
    assert answer.recognition.model_version == version


def assert_no_leftovers(store: ModelStore, *versions: str) -> None:
    """Only complete bundles in ``bundles/`` (no staging or half-written directories) and no
    temporary pointer files beside ``CURRENT``."""
    assert sorted(p.name for p in store.bundles.iterdir()) == sorted(versions)
    assert not [p.name for p in store.root.iterdir() if p.name.startswith(".current.")]


async def add_examples(storage: Storage, *, validation: bool = True) -> None:
    """Six pictures per label, some in the fixed validation set unless ``validation`` is False."""
    for label in LABELS:
        pictures = (f"{label}-{n}".encode() for n in range(100))
        for png in [p for p in pictures if validation or not is_validation(p)][:6]:
            await storage.examples.add_taught(Scope.of_guild(GUILD), label, png, 1)


async def no_progress(_: str) -> None:
    return None


def pid_in(path: Path) -> int | None:
    """The pid written to ``path``, or None while it is not there yet."""
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


async def wait_for_pid(path: Path) -> int:
    for _ in range(WAIT_STEPS):
        if (pid := pid_in(path)) is not None:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError(f"no pid in {path}")


# -- the trainer killed or cancelled mid-run ----------------------------------------------


def sleeping_trainer(tmp_path: Path) -> tuple[str, Path]:
    """A trainer that reports progress and sleeps; it writes its pid to the returned file."""
    pid_file = tmp_path / "trainer.pid"
    python = fake_trainer(
        tmp_path,
        f"""
        import os, time
        print("epoch 1/5", file=sys.stderr, flush=True)
        pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
        time.sleep({TRAINER_SLEEP})
        """,
    )
    return python, pid_file


def is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("how", ["sigkill", "cancel"])
async def test_a_trainer_stopped_mid_run_leaves_the_serving_model_and_a_failed_run(
    serving: str,
    storage: Storage,
    store: ModelStore,
    service: RecognitionService,
    tmp_path: Path,
    how: str,
) -> None:
    before = snapshot(store.root / "bundles")
    await add_examples(storage)
    python, pid_file = sleeping_trainer(tmp_path)
    manager = TrainingManager(storage, store, store_settings(store), python=python)
    retrain = asyncio.create_task(manager.retrain(1, GUILD, no_progress))
    pid = await wait_for_pid(pid_file)

    if how == "sigkill":
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(TrainingError) as stopped:
            await retrain
        said = stopped.value.user_message
        assert "the trainer process was killed (SIGKILL)" in said
    else:
        retrain.cancel()
        with pytest.raises(asyncio.CancelledError):
            await retrain
        assert not is_running(pid), "the trainer outlived its training"
        said = "interrupted: the bot stopped during the training"

    run = await storage.runs.latest(GUILD)
    assert run is not None and (run.status, run.message) == (RunStatus.FAILED, said)
    assert store.current_version() == serving
    assert snapshot(store.root / "bundles") == before
    assert_no_leftovers(store, serving)
    assert await storage.locks.acquire(lock_name(GUILD), "another bot", 60), "the lock was kept"
    await assert_still_serving(service, serving)


async def test_leftovers_of_a_training_killed_with_the_bot_are_cleaned_up(
    serving: str, storage: Storage, store: ModelStore, tmp_path: Path
) -> None:
    token = "0123456789abcdef" * 2  # a run whose lock lapsed with its process
    for stale in (f".candidate-{token}", f"..candidate-{token}.x1y2.tmp"):
        (store.bundles / stale).mkdir()
        (store.bundles / stale / MODEL_FILE).write_bytes(b"half a model")
    await add_examples(storage)
    failing = fake_trainer(
        tmp_path, 'print("error: no face found", file=sys.stderr)\nsys.exit(1)\n'
    )
    manager = TrainingManager(storage, store, store_settings(store), python=failing)

    with pytest.raises(TrainingError, match="no face found"):
        await manager.retrain(1, GUILD, no_progress)

    assert_no_leftovers(store, serving)


# -- the disk fills up ----------------------------------------------------------------------


def full_disk_after(fail_on: str) -> Callable[[Path, bytes], None]:
    """A ``_write_synced`` that writes half of ``fail_on`` and then finds the disk full."""
    real = bundle_module._write_synced

    def write(path: Path, data: bytes) -> None:
        if path.name != fail_on:
            real(path, data)
            return
        with path.open("wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    return write


@pytest.mark.parametrize("fail_on", [MODEL_FILE, LABELS_FILE, INFO_FILE])
@pytest.mark.parametrize("target", ["new version", "same version"])
async def test_a_full_disk_while_writing_a_bundle_leaves_no_half_bundle(
    serving: str,
    store: ModelStore,
    service: RecognitionService,
    monkeypatch: pytest.MonkeyPatch,
    fail_on: str,
    target: str,
) -> None:
    before = snapshot(store.bundles)
    good = load_bundle(store.bundle_path(serving))
    dest = store.bundle_path(BROKEN if target == "new version" else serving)
    monkeypatch.setattr(bundle_module, "_write_synced", full_disk_after(fail_on))

    with pytest.raises(OSError) as full:
        write_bundle(dest, good.model_path.read_bytes(), good.head, good.backbone, dict(good.info))

    assert full.value.errno == errno.ENOSPC
    assert snapshot(store.bundles) == before
    assert_no_leftovers(store, serving)
    assert store.current_version() == serving
    await assert_still_serving(service, serving)


async def test_a_full_disk_in_the_trainer_is_a_clear_failed_run(
    serving: str, storage: Storage, store: ModelStore, service: RecognitionService, tmp_path: Path
) -> None:
    before = snapshot(store.bundles)
    await add_examples(storage)
    python = fake_trainer(
        tmp_path,
        f"""
        import errno, os
        from bot.vision import bundle
        def full(path, data):
            path.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        bundle._write_synced = full
        out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
        good = bundle.load_bundle({str(store.bundle_path(serving))!r})
        info = dict(good.info, version="20990101-000000-new")
        bundle.write_bundle(out, good.model_path.read_bytes(), good.head, good.backbone, info)
        """,
    )
    manager = TrainingManager(storage, store, store_settings(store), python=python)

    with pytest.raises(TrainingError) as failed:
        await manager.retrain(1, GUILD, no_progress)

    message = failed.value.user_message
    assert message == "The training failed: No space left on device."
    run = await storage.runs.latest(GUILD)
    assert run is not None and (run.status, run.message) == (RunStatus.FAILED, message)
    assert snapshot(store.bundles) == before
    assert_no_leftovers(store, serving)
    await assert_still_serving(service, serving)


async def test_a_full_disk_while_moving_the_pointer_keeps_the_old_one(
    serving: str, store: ModelStore, service: RecognitionService, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(store.bundle_path(serving), store.bundle_path(BROKEN))

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        store.promote(BROKEN)
    monkeypatch.undo()

    assert store.current_version() == serving
    assert_no_leftovers(store, serving, BROKEN)
    await assert_still_serving(service, serving)


# -- damaged bundles ----------------------------------------------------------------------


def edit_info(path: Path, **changes: Any) -> None:
    info = json.loads((path / INFO_FILE).read_text("utf-8"))
    (path / INFO_FILE).write_text(json.dumps(info | changes), "utf-8")


def truncate_model(path: Path) -> None:
    model = path / MODEL_FILE
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])


def add_a_label_to_labels_txt(path: Path) -> None:
    with (path / LABELS_FILE).open("a", encoding="utf-8") as labels:
        labels.write("someone else\n")


def write_garbage_json(path: Path) -> None:
    (path / INFO_FILE).write_bytes(b'{"version": "20990101-000000-broken", "labels": [')


def replace_model_with_garbage(path: Path) -> None:
    """A model LiteRT refuses, with a checksum that matches it, so every file looks right."""
    garbage = b"this is not a flatbuffer" * 100
    (path / MODEL_FILE).write_bytes(garbage)
    edit_info(path, tflite_sha256=hashlib.sha256(garbage).hexdigest())


def list_more_labels_than_the_model_has(path: Path) -> None:
    """labels.txt and model.json agree with each other, not with the model's output."""
    info = json.loads((path / INFO_FILE).read_text("utf-8"))
    labels = [*info["labels"], "someone else"]
    (path / LABELS_FILE).write_text("\n".join(labels) + "\n", "utf-8")
    edit_info(path, labels=labels, label_count=len(labels))


DAMAGE = {
    "truncated model.tflite": truncate_model,
    "labels.txt disagrees with model.json": add_a_label_to_labels_txt,
    "garbage model.json": write_garbage_json,
    "a model LiteRT refuses": replace_model_with_garbage,
    "labels the model does not have": list_more_labels_than_the_model_has,
}


@pytest.fixture(params=list(DAMAGE))
def broken(serving: str, request: pytest.FixtureRequest, store: ModelStore) -> str:
    """A damaged copy of the serving bundle, as version ``BROKEN``."""
    shutil.copytree(store.bundle_path(serving), store.bundle_path(BROKEN))
    DAMAGE[request.param](store.bundle_path(BROKEN))
    return BROKEN


async def test_a_damaged_bundle_promoted_by_hand_is_not_served(
    serving: str,
    store: ModelStore,
    service: RecognitionService,
    broken: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (store.root / POINTER).write_text(broken + "\n")  # what an admin with a shell might do

    with caplog.at_level(logging.ERROR, logger="bot.service"):
        await assert_still_serving(service, serving)
        await assert_still_serving(service, serving)
    refusals = [r for r in caplog.records if r.levelno == logging.ERROR and broken in r.message]
    assert len(refusals) == 1, "the refusal is logged, once"


async def test_a_damaged_bundle_is_never_promoted(
    serving: str, store: ModelStore, service: RecognitionService, broken: str
) -> None:
    with pytest.raises(BundleError):
        store.promote(broken)

    assert store.current_version() == serving
    assert service.model_version == serving


async def test_rollback_to_a_damaged_bundle_is_refused_and_the_admin_told(
    serving: str,
    storage: Storage,
    store: ModelStore,
    service: RecognitionService,
    broken: str,
    tmp_path: Path,
) -> None:
    for version in (broken, serving):  # the damaged one served before the current one
        await storage.model_versions.register(
            version, "x", labels=LABELS, metrics={}, training_size=1
        )
        await storage.model_versions.activate(version)
    cog = models_cog(storage, store)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))

    with pytest.raises(TrainingError) as refused:
        await invoke(cog, "rollback", interaction)

    shown = describe(refused.value)  # what the error handler sends the admin
    assert shown is not None
    assert shown.startswith(f"Model {broken} is damaged, so I did not go back to it; ")
    assert f"model {serving} keeps serving" in shown
    assert str(tmp_path) not in shown
    assert store.current_version() == serving
    active = await storage.model_versions.active()
    assert active is not None and active.version == serving
    await assert_still_serving(service, serving)


def garbage_model_trainer(tmp_path: Path) -> str:
    """A trainer whose bundle has every file right but a model LiteRT refuses."""
    return fake_trainer(
        tmp_path,
        """
        from bot.vision.bundle import write_bundle
        sys.path.insert(0, ".")  # the repository (the trainer runs there)
        from tests.bundles import toy_backbone, toy_head
        out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
        info = {"version": "20990101-000000-new"}
        head = toy_head(["hoshizora rin", "nishikino maki"], toy_backbone().embedding_dim)
        write_bundle(out, b"not a model", head, toy_backbone(), info)
        """,
    )


@pytest.mark.parametrize("validation", [True, False], ids=["validated", "no validation set"])
async def test_retrain_producing_a_broken_model_keeps_the_current_one_and_says_so(
    serving: str,
    storage: Storage,
    store: ModelStore,
    service: RecognitionService,
    tmp_path: Path,
    validation: bool,
) -> None:
    await add_examples(storage, validation=validation)
    cog = models_cog(storage, store)
    cog.bot.training.python = garbage_model_trainer(tmp_path)
    interaction = fake_interaction(permissions=discord.Permissions(manage_guild=True))
    status = create_autospec(discord.WebhookMessage, instance=True)
    interaction.followup.send.return_value = status  # type: ignore[attr-defined]

    await invoke(cog, "retrain", interaction)

    final = status.edit.await_args.kwargs["content"]
    assert final.startswith("Training stopped. The new model is broken, so the current one ")
    assert "LiteRT" in final and str(tmp_path) not in final
    cog.bot.recognition.refresh.assert_not_called()  # type: ignore[attr-defined]
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.FAILED
    assert store.current_version() == serving
    assert_no_leftovers(store, serving)
    await assert_still_serving(service, serving)


def models_cog(storage: Storage, store: ModelStore) -> Models:
    """The models cog on a spec'd bot sharing ``store``'s model directory."""
    bot = fake_bot(storage, store.root)
    bot.models = store
    bot.training = TrainingManager(storage, store, bot.settings, instance="test:1")
    return Models(bot)


async def invoke(cog: Models, name: str, *args: Any) -> None:
    [command] = [c for c in cog.walk_app_commands() if c.qualified_name == name]
    callback: Any = command.callback
    await callback(cog, *args)
