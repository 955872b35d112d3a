"""Retraining: the lock, the fixed validation split, the gate, failures and rollback."""

from __future__ import annotations

import asyncio
import io
import sys
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from bot import training
from bot.config import Settings
from bot.errors import TrainingBusyError, TrainingError
from bot.models import ModelStore
from bot.storage.db import Storage
from bot.storage.schema import RunStatus
from bot.storage.scope import Scope
from bot.training import (
    TrainingManager,
    is_validation,
    lock_name,
    should_promote,
    write_split,
)
from bot.training_progress import Step
from bot.vision.bundle import write_bundle
from tests.bundles import toy_backbone, toy_head

LABELS = ["hoshizora rin", "nishikino maki"]
GUILD = 5
HERE = Scope.of_guild(GUILD)


@pytest.fixture
def store(tmp_path: Path) -> ModelStore:
    return ModelStore(tmp_path / "models")


def manager(storage: Storage, store: ModelStore, python: str = sys.executable) -> TrainingManager:
    return TrainingManager(
        storage, store, Settings(model_dir=store.root), instance="me", python=python
    )


def fake_bundle(store: ModelStore, version: str) -> None:
    info = {"version": version, "metrics": {"top1": 0.9}}
    head = toy_head(LABELS, toy_backbone().embedding_dim)
    write_bundle(store.bundle_path(version), b"tflite", head, toy_backbone(), info)


def fake_jpeg(tag: str) -> bytes:
    """Bytes that start like a JPEG (stored crops are JPEG), distinct per ``tag``."""
    return b"\xff\xd8\xff\xe0" + tag.encode()


async def add_examples(storage: Storage, per_label: int = 6) -> None:
    for label in LABELS:
        for n in range(per_label):
            await storage.examples.add_taught(HERE, label, fake_jpeg(f"{label}-{n}"), 1)


def fake_trainer(tmp_path: Path, body: str) -> str:
    """An executable standing in for ``python`` that runs ``body`` with the trainer's args."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!{sys.executable}\nimport sys, pathlib\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


def write_bundle_at_out() -> str:
    return """
        from bot.vision.bundle import write_bundle
        sys.path.insert(0, ".")  # the repository (the trainer runs there)
        from tests.bundles import toy_backbone, toy_head
        out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
        info = {"version": "20990101-new", "metrics": {"top1": 1.0}}
        head = toy_head(["hoshizora rin", "nishikino maki"], toy_backbone().embedding_dim)
        print("WARNING: All log messages before absl::InitializeLog()", file=sys.stderr)
        print('{"stage": "faces", "done": 0, "total": 12}', flush=True)
        print("not a progress line", flush=True)
        print('{"stage": "faces", "done": 12, "total": 12}', flush=True)
        write_bundle(out, b"tflite", head, toy_backbone(), info)
    """


@pytest.mark.parametrize(
    ("candidate", "current", "promoted"),
    [
        (0.8, None, True),
        (None, 0.9, True),
        (0.9, 0.9, True),
        (0.95, 0.9, True),
        (0.85, 0.9, False),
        (0.0, 0.1, False),
    ],
)
def test_gate_promotes_only_a_candidate_that_is_not_worse(
    candidate: float | None, current: float | None, promoted: bool
) -> None:
    assert should_promote(candidate, current)[0] is promoted


def test_validation_split_is_stable_and_about_a_fifth() -> None:
    pictures = [f"picture {n}".encode() for n in range(1000)]

    first = [is_validation(p) for p in pictures]

    assert first == [is_validation(p) for p in pictures]
    assert 150 < sum(first) < 250


def layout(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))


def test_split_writes_the_trainers_folder_layout(tmp_path: Path) -> None:
    examples = [(label, fake_jpeg(f"{label}-{n}")) for label in LABELS for n in range(10)]

    summary, held_out = write_split(examples, tmp_path / "a")
    again, held_again = write_split(examples, tmp_path / "b")

    assert held_out == held_again and summary == again
    assert held_out == [e for e in examples if is_validation(e[1])]
    assert sum(summary.training.values()) + len(held_out) == len(examples)
    assert (tmp_path / "a/train/nishikino_maki/0.jpg").is_file()
    assert layout(tmp_path / "a") == layout(tmp_path / "b")


async def test_retrain_is_refused_while_another_holds_the_lock(
    storage: Storage, store: ModelStore
) -> None:
    await storage.locks.acquire(lock_name(GUILD), "someone else", 600)

    with pytest.raises(TrainingBusyError, match="already running"):
        await manager(storage, store).retrain(1, GUILD, progress)
    assert await storage.runs.latest(GUILD) is None


async def progress(_: object) -> None:
    return None


TOO_LITTLE = r"Not enough confirmed data.*\(have nishikino maki: 1\)"


def scored(accuracy: float) -> training.Evaluation:
    """An evaluation with this accuracy over 100 validation pictures of one character."""
    return training.Evaluation({"nishikino maki": round(accuracy * 100)}, {"nishikino maki": 100})


async def test_too_little_data_is_a_clear_error_and_frees_the_lock(
    storage: Storage, store: ModelStore
) -> None:
    await storage.examples.add_taught(HERE, "nishikino maki", b"one", 1)

    with pytest.raises(
        TrainingError,
        match=r"Not enough confirmed data.*\(have (Nishikino Maki|nishikino maki): 1\)",
    ):
        await manager(storage, store).retrain(1, GUILD, progress)

    assert await storage.locks.acquire(lock_name(GUILD), "someone else", 600)
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.FAILED


async def test_a_failed_trainer_leaves_the_current_model_serving(
    storage: Storage, store: ModelStore, tmp_path: Path
) -> None:
    fake_bundle(store, "20200101-old")
    store.promote("20200101-old")
    await add_examples(storage)
    python = fake_trainer(
        tmp_path, 'print("error: no face in any picture", file=sys.stderr)\nsys.exit(1)\n'
    )

    with pytest.raises(TrainingError, match="no face in any picture"):
        await manager(storage, store, python).retrain(1, GUILD, progress)

    assert store.current_version() == "20200101-old"
    assert [p.name for p in store.bundles.iterdir()] == ["20200101-old"]
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.FAILED


async def test_a_worse_candidate_is_kept_out(
    storage: Storage, store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bundle(store, "20200101-old")
    store.promote("20200101-old")
    await add_examples(storage)
    scores = {"20200101-old": 0.9, "20990101-new": 0.5}
    monkeypatch.setattr(training, "evaluate", lambda path, _v, _c: scored(scores[Path(path).name]))
    python = fake_trainer(tmp_path, write_bundle_at_out())

    outcome = await manager(storage, store, python).retrain(1, GUILD, progress)

    assert not outcome.promoted
    assert "worse" in outcome.message
    assert store.current_version() == "20200101-old"
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.REJECTED


async def test_a_better_candidate_is_promoted_then_rolled_back(
    storage: Storage, store: ModelStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bundle(store, "20200101-old")
    await storage.model_versions.register(
        "20200101-old", "x", labels=LABELS, metrics={}, training_size=1
    )
    await storage.model_versions.activate("20200101-old")
    store.promote("20200101-old")
    await add_examples(storage)
    monkeypatch.setattr(training, "evaluate", lambda path, _v, _c: scored(1.0))
    messages: list[str] = []

    async def remember(update: object) -> None:
        messages.append(str(update))

    python = fake_trainer(tmp_path, write_bundle_at_out())
    trainer = manager(storage, store, python)
    outcome = await trainer.retrain(1, GUILD, remember)

    assert outcome.promoted and outcome.version == "20990101-new"
    assert store.current_version() == "20990101-new"
    assert messages and messages[0].startswith("Training on")
    assert messages[1:] == [
        str(Step("faces", 0, 12)),
        str(Step("faces", 12, 12)),
        str(Step("checking", 0, 1)),
    ]
    assert not any(p.name.startswith(".candidate") for p in store.bundles.iterdir())

    assert await trainer.rollback() == "20200101-old"
    assert store.current_version() == "20200101-old"
    active = await storage.model_versions.active()
    assert active is not None and active.version == "20200101-old"


async def test_rollback_without_an_earlier_model_is_refused(
    storage: Storage, store: ModelStore
) -> None:
    with pytest.raises(TrainingError, match="no earlier model"):
        await manager(storage, store).rollback()


async def test_export_zip_has_a_folder_per_character(storage: Storage, store: ModelStore) -> None:
    await add_examples(storage, per_label=2)

    data = await manager(storage, store).export_zip(HERE)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == [
            "hoshizora_rin/0.jpg",
            "hoshizora_rin/1.jpg",
            "nishikino_maki/0.jpg",
            "nishikino_maki/1.jpg",
        ]
        assert archive.read("nishikino_maki/1.jpg") == fake_jpeg("nishikino maki-1")


# -- one training per server at a time, several servers at once --------------------------

OTHER = 6


def gated_trainer(tmp_path: Path) -> str:
    """A trainer that starts a staging directory (as a trainer killed mid-run leaves one),
    says so with ``<staging>.started`` beside ``gate/``, and finishes a bundle named after
    its staging directory only once ``gate/release`` exists."""
    gate = tmp_path / "gate"
    gate.mkdir()
    return fake_trainer(
        tmp_path,
        f"""
        import shutil, time
        from bot.vision.bundle import write_bundle
        sys.path.insert(0, ".")  # the repository (the trainer runs there)
        from tests.bundles import toy_backbone, toy_head
        out = pathlib.Path(sys.argv[sys.argv.index("--out") + 1])
        gate = pathlib.Path({str(gate)!r})
        out.mkdir()
        (out / "half.tflite").write_bytes(b"half a model")
        (gate / (out.name + ".started")).touch()
        while not (gate / "release").exists():
            time.sleep(0.02)
        shutil.rmtree(out)
        info = {{"version": "20990101-" + out.name[-8:], "metrics": {{"top1": 1.0}}}}
        head = toy_head(["hoshizora rin", "nishikino maki"], toy_backbone().embedding_dim)
        write_bundle(out, b"tflite", head, toy_backbone(), info)
        """,
    )


def started(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "gate").glob("*.started"))


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still waiting for {what}")


def release(tmp_path: Path) -> None:
    (tmp_path / "gate" / "release").touch()


async def add_examples_in(storage: Storage, guild_id: int) -> None:
    for label in LABELS:
        for n in range(6):
            picture = fake_jpeg(f"{guild_id}-{label}-{n}")
            await storage.examples.add_taught(Scope.of_guild(guild_id), label, picture, 1)


def concurrent_manager(
    storage: Storage, store: ModelStore, python: str, *, instance: str = "host:1", limit: int = 1
) -> TrainingManager:
    settings = Settings(model_dir=store.root, training_concurrency=limit)
    return TrainingManager(storage, store, settings, instance=instance, python=python)


@pytest.fixture
def evaluate_all_right(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(training, "evaluate", lambda path, _v, _c: scored(1.0))


@pytest.mark.usefixtures("evaluate_all_right")
async def test_a_second_retrain_of_a_server_in_the_same_process_is_refused(
    storage: Storage, store: ModelStore, tmp_path: Path
) -> None:
    await add_examples(storage)
    trainer = concurrent_manager(storage, store, gated_trainer(tmp_path))
    first = asyncio.create_task(trainer.retrain(1, GUILD, progress))
    await until(lambda: len(started(tmp_path)) == 1, "the first training to start")

    with pytest.raises(TrainingBusyError, match="already running"):
        await trainer.retrain(2, GUILD, progress)

    release(tmp_path)
    assert (await first).promoted
    runs = await storage.runs.latest(GUILD)
    assert runs is not None and runs.requested_by == 1
    assert await storage.locks.holders("training:") == set()


@pytest.mark.usefixtures("evaluate_all_right")
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_processes_cannot_train_one_server_at_once(
    store: ModelStore, tmp_path: Path, request: pytest.FixtureRequest, backend: str
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.url(server.create_database())
    python = gated_trainer(tmp_path)
    async with Storage.open(url) as one, Storage.open(url) as two:
        await add_examples(one)
        first = asyncio.create_task(
            concurrent_manager(one, store, python, instance="host:1").retrain(1, GUILD, progress)
        )
        await until(lambda: len(started(tmp_path)) == 1, "the first training to start")

        with pytest.raises(TrainingBusyError):
            await concurrent_manager(two, store, python, instance="host:2").retrain(
                2, GUILD, progress
            )

        release(tmp_path)
        assert (await first).promoted


@pytest.mark.usefixtures("evaluate_all_right")
async def test_different_servers_train_at_once_up_to_the_limit(
    storage: Storage, store: ModelStore, tmp_path: Path
) -> None:
    await add_examples_in(storage, GUILD)
    await add_examples_in(storage, OTHER)
    trainer = concurrent_manager(storage, store, gated_trainer(tmp_path), limit=2)

    runs = [asyncio.create_task(trainer.retrain(1, g, progress)) for g in (GUILD, OTHER)]
    await until(lambda: len(started(tmp_path)) == 2, "both trainings to start")
    release(tmp_path)

    outcomes = await asyncio.gather(*runs)
    assert all(outcome.version for outcome in outcomes)
    assert len({outcome.version for outcome in outcomes}) == 2


@pytest.mark.usefixtures("evaluate_all_right")
async def test_beyond_the_limit_a_server_waits_its_turn_and_is_told(
    storage: Storage, store: ModelStore, tmp_path: Path
) -> None:
    await add_examples_in(storage, GUILD)
    await add_examples_in(storage, OTHER)
    trainer = concurrent_manager(storage, store, gated_trainer(tmp_path), limit=1)
    told: list[str] = []

    async def remember(update: object) -> None:
        told.append(str(update))

    first = asyncio.create_task(trainer.retrain(1, GUILD, progress))
    await until(lambda: len(started(tmp_path)) == 1, "the first training to start")
    second = asyncio.create_task(trainer.retrain(1, OTHER, remember))
    await until(lambda: bool(told), "the second server to be told")

    assert told[0].startswith("Waiting for a training of another server")
    assert len(started(tmp_path)) == 1
    with pytest.raises(TrainingBusyError):  # and it holds its server's place meanwhile
        await trainer.retrain(2, OTHER, progress)
    release(tmp_path)
    assert (await first).version and (await second).version


async def test_a_run_removes_only_what_runs_that_died_left(
    storage: Storage, store: ModelStore
) -> None:
    live, dead = "a" * 32, "b" * 32
    store.bundles.mkdir(parents=True)
    left = [f".candidate-{live}", f".candidate-{dead}", f"..candidate-{dead}.x1y2.tmp"]
    left += [".candidate-from-an-older-bot", "20200101-old"]
    for name in left:
        (store.bundles / name).mkdir()
    await storage.locks.acquire(lock_name(OTHER), f"other-host:9/{live}", 600)
    await storage.examples.add_taught(HERE, "nishikino maki", b"one", 1)

    with pytest.raises(
        TrainingError,
        match=r"Not enough confirmed data.*\(have (Nishikino Maki|nishikino maki): 1\)",
    ):
        await manager(storage, store).retrain(1, GUILD, progress)

    assert sorted(p.name for p in store.bundles.iterdir()) == sorted(
        [f".candidate-{live}", ".candidate-from-an-older-bot", "20200101-old"]
    )


async def test_export_zip_has_only_the_servers_own_examples(
    storage: Storage, store: ModelStore
) -> None:
    await storage.examples.add_taught(HERE, "Nishikino Maki", fake_jpeg("here"), 1)
    await storage.examples.add_taught(Scope.of_guild(OTHER), "Sonoda Umi", fake_jpeg("there"), 1)

    data = await manager(storage, store).export_zip(HERE)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["Nishikino_Maki/0.jpg"]


@pytest.mark.usefixtures("evaluate_all_right")
async def test_a_server_without_enough_data_is_told_at_once_while_another_trains(
    storage: Storage, store: ModelStore, tmp_path: Path
) -> None:
    await add_examples_in(storage, GUILD)
    trainer = concurrent_manager(storage, store, gated_trainer(tmp_path), limit=1)
    first = asyncio.create_task(trainer.retrain(1, GUILD, progress))
    await until(lambda: len(started(tmp_path)) == 1, "the first training to start")

    with pytest.raises(TrainingError, match="Not enough confirmed data"):
        await trainer.retrain(1, OTHER, progress)

    release(tmp_path)
    assert (await first).promoted
