"""A server's retraining: on the base's and its own examples, promoted for that server only
if the gate says so, one per server at a time; rollback within the server; the export."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from bot.config import Settings
from bot.errors import TrainingBusyError, TrainingError
from bot.gate import GateReport
from bot.install import install_base
from bot.model_store import ModelStore
from bot.refit import OnStep, RefitJob, RefitResult, refit
from bot.storage.db import Storage
from bot.storage.schema import RunStatus
from bot.storage.scope import Scope
from bot.training import TrainingManager, lock_name
from bot.training_progress import Step
from bot.vision.cascade import bundled_cascade
from tests.bundles import toy_head
from tests.e2e.bundle import taught_crops
from tests.pictures import Character, tiny_training_run

GUILD = 5
OTHER = 6
HERE = Scope.of_guild(GUILD)
NEW = Character("char_d", hair=(40, 200, 60), eyes=(200, 40, 200))
"""A character the base model does not know."""


async def progress(_: object) -> None:
    return None


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The session's tiny bundle and the pictures it was trained on."""
    run = tiny_training_run(tmp_path_factory)
    return run.bundle, run.data


@pytest.fixture(scope="module")
def new_character_crops() -> list[bytes]:
    """Stored crops of six pictures of a character the base model does not know."""
    return taught_crops(NEW, 6)


@pytest.fixture
def store(storage: Storage, tmp_path: Path) -> ModelStore:
    return ModelStore(storage, tmp_path / "models")


def manager(
    storage: Storage,
    store: ModelStore,
    *,
    refit_with: Callable[[RefitJob], Awaitable[RefitResult]] | None = None,
    instance: str = "host:1",
    limit: int = 1,
) -> TrainingManager:
    """A manager whose refit is ``refit_with`` (told no steps), or the real one."""

    async def without_steps(job: RefitJob, on_step: OnStep) -> RefitResult:
        assert refit_with is not None
        return await refit_with(job)

    settings = Settings(model_dir=store.cache_dir, training_concurrency=limit)
    return TrainingManager(
        storage, store, settings, instance=instance, refit=without_steps if refit_with else None
    )


async def in_process(job: RefitJob) -> RefitResult:
    """The real refit, in a thread of the test process (faster to start than a process)."""
    return await asyncio.to_thread(refit, job)


async def install(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], *, with_data: bool = True
) -> str:
    bundle, data = tiny
    result = await install_base(
        storage, store, bundle, data if with_data else None, cascade_path=bundled_cascade()
    )
    return result.version


async def teach_new_character(storage: Storage, crops: list[bytes], guild: int = GUILD) -> None:
    for crop in crops:
        await storage.examples.add_taught(Scope.of_guild(guild), "Char D", crop, 1)


async def teach_two_characters(storage: Storage, crops: list[bytes], guild: int = GUILD) -> None:
    """Enough for a server to train on without the base's pictures (a new character, and
    two pictures of a base character)."""
    await teach_new_character(storage, crops[:3], guild)
    for crop in crops[3:5]:
        await storage.examples.add_taught(Scope.of_guild(guild), "char a", crop, 1)


# -- what a retrain learns from, and whom it serves -----------------------------------------


async def test_a_new_character_taught_in_a_server_is_promoted_for_that_server_only(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    base = await install(storage, store, tiny)
    await teach_new_character(storage, new_character_crops)

    told: list[object] = []

    async def remember(update: object) -> None:
        told.append(update)

    outcome = await manager(storage, store).retrain(1, GUILD, remember)  # a real refit process

    assert outcome.promoted, outcome.message
    steps = [update for update in told if isinstance(update, Step)]
    stages = list(dict.fromkeys(step.stage for step in steps))
    assert stages == ["embedding", "validation", "checking"], told
    embedding = [step for step in steps if step.stage == "embedding"]
    assert embedding[-1] == Step("embedding", len(new_character_crops), len(new_character_crops))
    assert [s.done for s in steps if s.stage == "validation"][-1] > 1, "no fold reported"
    last_check = [s for s in steps if s.stage == "checking"][-1]
    assert last_check.done == last_check.total > 1
    assert [c.name for c in outcome.new_characters] == ["Char D"]
    assert {c.name for c in outcome.characters} == {"char a", "char b", "char c"}
    own = await store.serving(GUILD)
    assert own is not None and own.version == outcome.version and own.scope == HERE
    assert "char d" in own.labels
    other = await store.serving(OTHER)
    assert other is not None and other.version == base and "char d" not in other.labels
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.SUCCEEDED


async def test_every_example_is_embedded_once_per_backbone(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await install(storage, store, tiny)
    await teach_new_character(storage, new_character_crops)
    jobs: list[RefitJob] = []

    async def spying(job: RefitJob) -> RefitResult:
        jobs.append(job)
        return await in_process(job)

    told: list[object] = []

    async def remember(update: object) -> None:
        told.append(update)

    trainer = manager(storage, store, refit_with=spying)
    await trainer.retrain(1, GUILD, remember)
    await trainer.retrain(1, GUILD, progress)

    # The base's pictures came embedded with the install; the server's, at its first retrain.
    assert len(jobs[0].crops) == len(new_character_crops)
    assert jobs[1].crops == {} and len(jobs[1].cached) == len(jobs[1].labels)
    assert str(told[0]).startswith("Training on")
    assert len(told) == 1, "steps come from the refit itself (this one tells none)"


async def test_without_a_base_model_a_retrain_says_how_to_install_one(
    storage: Storage, store: ModelStore
) -> None:
    await storage.examples.add_taught(HERE, "nishikino maki", b"one", 1)

    with pytest.raises(TrainingError, match="install-base"):
        await manager(storage, store).retrain(1, GUILD, progress)


async def test_a_server_without_pictures_of_its_own_is_told_and_the_lock_freed(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path]
) -> None:
    await install(storage, store, tiny)
    await storage.examples.add_taught(Scope.of_guild(OTHER), "Char D", b"elsewhere", 1)

    with pytest.raises(TrainingError, match="no confirmed pictures of its own"):
        await manager(storage, store).retrain(1, GUILD, progress)

    assert await storage.locks.acquire(lock_name(GUILD), "someone else", 600)
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.FAILED


async def test_too_little_data_is_a_clear_error(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path]
) -> None:
    await install(storage, store, tiny, with_data=False)
    await storage.examples.add_taught(HERE, "Nishikino Maki", b"one", 1)

    with pytest.raises(
        TrainingError, match=r"Not enough confirmed data.*\(have Nishikino Maki: 1\)"
    ):
        await manager(storage, store).retrain(1, GUILD, progress)


# -- the gate's decision -------------------------------------------------------------------


def refused(report_reason: str) -> GateReport:
    return GateReport(
        promote=False,
        reason=report_reason,
        compared=10,
        right_before=9,
        right_after=4,
        worse=5,
        better=0,
        p_value=1 / 32,
        characters=(),
        new_characters=(),
    )


def fake_result(job: RefitJob, gate: GateReport | None) -> RefitResult:
    labels = tuple(sorted(set(job.labels.values())))
    dim = int(job.backbone["feature_dim"]) * len(job.backbone["crop"]["margins"])
    head = toy_head(labels, dim)
    return RefitResult(head.to_bytes(), labels, 0.9, list(job.labels), gate, {}, [])


async def test_a_candidate_the_gate_refuses_is_kept_out(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    base = await install(storage, store, tiny, with_data=False)
    await teach_two_characters(storage, new_character_crops)

    async def worse(job: RefitJob) -> RefitResult:
        return fake_result(job, refused("worse beyond chance"))

    outcome = await manager(storage, store, refit_with=worse).retrain(1, GUILD, progress)

    assert not outcome.promoted and outcome.message == "worse beyond chance"
    serving = await store.serving(GUILD)
    assert serving is not None and serving.version == base
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.status is RunStatus.REJECTED
    assert run.candidate_version == outcome.version


# -- rollback stays within the server ------------------------------------------------------


async def promoted_twice(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], crops: list[bytes]
) -> tuple[str, str, str]:
    base = await install(storage, store, tiny, with_data=False)
    await teach_two_characters(storage, crops)

    async def accepted(job: RefitJob) -> RefitResult:
        return fake_result(job, None)

    trainer = manager(storage, store, refit_with=accepted)
    first = await trainer.retrain(1, GUILD, progress)
    second = await trainer.retrain(1, GUILD, progress)
    assert first.version and second.version and first.version != second.version
    return base, first.version, second.version


async def test_rollback_returns_to_the_servers_previous_model(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    _, first, _ = await promoted_twice(storage, store, tiny, new_character_crops)

    assert await manager(storage, store).rollback(GUILD) == first
    serving = await store.serving(GUILD)
    assert serving is not None and serving.version == first


async def test_rollback_never_goes_to_another_servers_model(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await promoted_twice(storage, store, tiny, new_character_crops)

    with pytest.raises(TrainingError, match="no earlier model of its own"):
        await manager(storage, store).rollback(OTHER)


async def test_rollback_to_the_base_model(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    base, _, _ = await promoted_twice(storage, store, tiny, new_character_crops)
    trainer = manager(storage, store)

    assert await trainer.rollback(GUILD, to_base=True) is None
    serving = await store.serving(GUILD)
    assert serving is not None and serving.version == base
    with pytest.raises(TrainingError, match="already answers"):
        await trainer.rollback(GUILD, to_base=True)


async def test_rollback_without_an_earlier_model_offers_the_base(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await install(storage, store, tiny, with_data=False)
    await teach_two_characters(storage, new_character_crops)

    async def accepted(job: RefitJob) -> RefitResult:
        return fake_result(job, None)

    await manager(storage, store, refit_with=accepted).retrain(1, GUILD, progress)

    with pytest.raises(TrainingError, match="`/rollback base: True`"):
        await manager(storage, store).rollback(GUILD)


# -- one training per server at a time, several servers at once --------------------------


class Gate:
    """A refit that waits until released, counting the refits that started."""

    def __init__(self) -> None:
        self.started = 0
        self.released = asyncio.Event()

    async def refit(self, job: RefitJob) -> RefitResult:
        self.started += 1
        await self.released.wait()
        return fake_result(job, None)


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(1500):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"still waiting for {what}")


async def two_servers_ready(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], crops: list[bytes]
) -> None:
    await install(storage, store, tiny, with_data=False)
    for guild in (GUILD, OTHER):
        await teach_two_characters(storage, crops, guild)


async def test_retrain_is_refused_while_another_holds_the_lock(
    storage: Storage, store: ModelStore
) -> None:
    await storage.locks.acquire(lock_name(GUILD), "someone else", 600)

    with pytest.raises(TrainingBusyError, match="already running"):
        await manager(storage, store).retrain(1, GUILD, progress)
    assert await storage.runs.latest(GUILD) is None


async def test_a_second_retrain_of_a_server_in_the_same_process_is_refused(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await two_servers_ready(storage, store, tiny, new_character_crops)
    gate = Gate()
    trainer = manager(storage, store, refit_with=gate.refit)
    first = asyncio.create_task(trainer.retrain(1, GUILD, progress))
    await until(lambda: gate.started == 1, "the first training to start")

    with pytest.raises(TrainingBusyError, match="already running"):
        await trainer.retrain(2, GUILD, progress)

    gate.released.set()
    assert (await first).promoted
    run = await storage.runs.latest(GUILD)
    assert run is not None and run.requested_by == 1
    assert await storage.locks.holders("training:") == set()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_two_processes_cannot_train_one_server_at_once(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    backend: str,
    tiny: tuple[Path, Path],
    new_character_crops: list[bytes],
) -> None:
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path}/shared.db"
    else:
        server = request.getfixturevalue("postgres_server")
        url = server.url(server.create_database())
    gate = Gate()
    async with Storage.open(url) as one, Storage.open(url) as two:
        store_one = ModelStore(one, tmp_path / "one")
        store_two = ModelStore(two, tmp_path / "two")
        await two_servers_ready(one, store_one, tiny, new_character_crops)
        first = asyncio.create_task(
            manager(one, store_one, refit_with=gate.refit).retrain(1, GUILD, progress)
        )
        await until(lambda: gate.started == 1, "the first training to start")

        with pytest.raises(TrainingBusyError):
            await manager(two, store_two, refit_with=gate.refit, instance="host:2").retrain(
                2, GUILD, progress
            )

        gate.released.set()
        assert (await first).promoted


async def test_different_servers_train_at_once_up_to_the_limit(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await two_servers_ready(storage, store, tiny, new_character_crops)
    gate = Gate()
    trainer = manager(storage, store, refit_with=gate.refit, limit=2)

    runs = [asyncio.create_task(trainer.retrain(1, g, progress)) for g in (GUILD, OTHER)]
    await until(lambda: gate.started == 2, "both trainings to start")
    gate.released.set()

    outcomes = await asyncio.gather(*runs)
    assert all(outcome.promoted for outcome in outcomes)
    mine, theirs = await store.serving(GUILD), await store.serving(OTHER)
    assert mine is not None and mine.scope == HERE
    assert theirs is not None and theirs.scope == Scope.of_guild(OTHER)


async def test_beyond_the_limit_a_server_waits_its_turn_and_is_told(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await two_servers_ready(storage, store, tiny, new_character_crops)
    gate = Gate()
    trainer = manager(storage, store, refit_with=gate.refit, limit=1)
    told: list[str] = []

    async def remember(update: object) -> None:
        told.append(str(update))

    first = asyncio.create_task(trainer.retrain(1, GUILD, progress))
    await until(lambda: gate.started == 1, "the first training to start")
    second = asyncio.create_task(trainer.retrain(1, OTHER, remember))
    await until(lambda: bool(told), "the second server to be told")

    assert told[0].startswith("Waiting for a training of another server")
    assert gate.started == 1
    with pytest.raises(TrainingBusyError):  # and it holds its server's place meanwhile
        await trainer.retrain(2, OTHER, progress)
    gate.released.set()
    assert (await first).promoted and (await second).promoted


async def test_a_server_without_enough_data_is_told_at_once_while_another_trains(
    storage: Storage, store: ModelStore, tiny: tuple[Path, Path], new_character_crops: list[bytes]
) -> None:
    await two_servers_ready(storage, store, tiny, new_character_crops)
    gate = Gate()
    trainer = manager(storage, store, refit_with=gate.refit, limit=1)
    first = asyncio.create_task(trainer.retrain(1, GUILD, progress))
    await until(lambda: gate.started == 1, "the first training to start")

    with pytest.raises(TrainingError, match="no confirmed pictures of its own"):
        await trainer.retrain(1, 7, progress)

    gate.released.set()
    assert (await first).promoted


# -- the export ----------------------------------------------------------------------------


def fake_jpeg(tag: str) -> bytes:
    """Bytes that start like a JPEG (stored crops are JPEG), distinct per ``tag``."""
    return b"\xff\xd8\xff\xe0" + tag.encode()


async def test_export_zip_has_a_folder_per_character(storage: Storage, store: ModelStore) -> None:
    for label in ("hoshizora rin", "nishikino maki"):
        for n in range(2):
            await storage.examples.add_taught(HERE, label, fake_jpeg(f"{label}-{n}"), 1)

    data = await manager(storage, store).export_zip(HERE)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Lowercase names (as a vote or a base label creates them) are shown capitalised.
        assert sorted(archive.namelist()) == [
            "Hoshizora_Rin/0.jpg",
            "Hoshizora_Rin/1.jpg",
            "Nishikino_Maki/0.jpg",
            "Nishikino_Maki/1.jpg",
        ]
        assert archive.read("Nishikino_Maki/1.jpg") == fake_jpeg("nishikino maki-1")


async def test_export_zip_has_only_the_servers_own_examples(
    storage: Storage, store: ModelStore
) -> None:
    await storage.examples.add_taught(HERE, "Nishikino Maki", fake_jpeg("here"), 1)
    await storage.examples.add_taught(Scope.of_guild(OTHER), "Sonoda Umi", fake_jpeg("there"), 1)

    data = await manager(storage, store).export_zip(HERE)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.namelist() == ["Nishikino_Maki/0.jpg"]


def test_refit_features_round_trip() -> None:
    from bot.refit import features_from_bytes, features_to_bytes

    features = np.arange(12, dtype=np.float32).reshape(2, 6)

    assert np.array_equal(features_from_bytes(features_to_bytes(features), 6), features)
