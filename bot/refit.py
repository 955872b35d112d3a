"""A server's retraining without TensorFlow: embed its new examples with the shared backbone
(LiteRT), refit a head on the base's and the server's examples, and gate it.

:func:`refit` is a plain function of plain values so that it runs in a separate process at
a lower CPU priority (:func:`run_refit`): answering pictures keeps its cores while a server
retrains, and the bot process never holds the work's memory.

Its progress comes back as the stages it really goes through (:data:`REFIT_STAGES`), each
step ``(stage, done, total)`` put on a queue the bot reads; the cross-validation's steps are
the trainer's own ``--progress-json`` lines (``trainer.progress``), read from that stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BotError, TrainingError
from bot.gate import GateReport, compare
from bot.training_progress import Step, parse_step
from bot.vision.bundle import BackboneInfo
from bot.vision.embedder import FaceEmbedder
from bot.vision.examples import embed_both_ways, example_views

log = logging.getLogger(__name__)

NICENESS = 19
"""The refit process's CPU priority is the lowest: it runs on what answering leaves."""
FEATURES_DTYPE = np.float32
REFIT_STAGES = ("embedding", "validation", "checking")
"""What a refit goes through, in order: embedding the examples not cached yet (skipped when
all are), cross-validating the head, and the gate's comparison with the serving model."""
POLL_SECONDS = 0.25

Report = Callable[[str, int, int], None]
"""Told ``(stage, done, total)`` as a refit goes (in the process that runs it)."""
OnStep = Callable[[Step], Awaitable[None]]
"""Told each step of a refit, in the bot's event loop."""


def no_report(stage: str, done: int, total: int) -> None:
    """Progress nobody listens to."""


class _LineReader:
    """A text stream for ``trainer.progress``: each progress line it is given, as a step."""

    def __init__(self, report: Report) -> None:
        self._report = report

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if step := parse_step(line):
                self._report(step.stage, step.done, step.total)
        return len(text)

    def flush(self) -> None:
        """Nothing is buffered."""


@contextlib.contextmanager
def _trainer_progress(report: Report) -> Iterator[None]:
    """The trainer's progress lines (cross-validation folds) told to ``report`` meanwhile."""
    from trainer import progress

    progress.enable(_LineReader(report))  # type: ignore[arg-type]
    try:
        yield
    finally:
        progress.disable()


def features_to_bytes(features: np.ndarray) -> bytes:
    """A ``2×D`` embedding as stored in ``example_embeddings``."""
    return np.ascontiguousarray(features, FEATURES_DTYPE).tobytes()


def features_from_bytes(data: bytes, dim: int) -> np.ndarray:
    """Read back what :func:`features_to_bytes` wrote."""
    return np.frombuffer(data, FEATURES_DTYPE).reshape(2, dim)


@dataclass(frozen=True)
class RefitJob:
    """Everything a refit needs, as plain values (it crosses a process boundary)."""

    backbone_path: Path
    backbone: dict[str, Any]
    labels: dict[int, str]
    """Every example's character key: the candidate's training set."""
    groups: dict[int, str]
    """Keeps copies of one picture in one cross-validation fold."""
    cached: dict[int, bytes]
    """Embeddings already in the database (the candidate's and the serving set's)."""
    crops: dict[int, bytes]
    """Stored crops of the examples without a cached embedding."""
    serving_set: list[int] | None
    """What the serving model was trained on (None: nothing to compare with); examples
    deleted since, or no longer the base's or this server's, are left out."""
    folds: int = 10
    repeats: int = 3


@dataclass(frozen=True)
class RefitResult:
    """A refit's head, its cross-validated accuracy, the gate's report, and the embeddings
    it computed (to cache in the database)."""

    head: bytes
    labels: tuple[str, ...]
    accuracy: float
    examples: list[int]
    gate: GateReport | None
    embedded: dict[int, bytes]
    unreadable: list[int]


def refit(job: RefitJob, report: Report = no_report) -> RefitResult:
    """Embed what is missing, fit and cross-validate the head, and gate it (slow: a few
    seconds for a hundred pictures; run it with :func:`run_refit`), telling ``report`` each
    step of :data:`REFIT_STAGES`."""
    from trainer.head import HeadOptions, train_head

    backbone = BackboneInfo.from_dict(job.backbone)
    dim = backbone.embedding_dim
    features = {i: features_from_bytes(data, dim) for i, data in job.cached.items()}
    embedded, unreadable = _embed_missing(job, backbone, report)
    features |= {i: features_from_bytes(data, dim) for i, data in embedded.items()}
    examples = [i for i in job.labels if i in features]
    names = sorted({job.labels[i] for i in examples})
    counts = {name: sum(job.labels[i] == name for i in examples) for name in names}
    enough = [name for name, count in counts.items() if count >= 2]
    if len(enough) < 2:
        have = ", ".join(f"{name}: {count}" for name, count in counts.items()) or "none"
        raise TrainingError(
            "Not enough confirmed data: at least two characters with two pictures each are "
            "needed (have {have}).",
            have=have,
        )
    examples = [i for i in examples if counts[job.labels[i]] >= 2]
    names = enough
    index = {name: n for n, name in enumerate(names)}
    x = np.stack([features[i] for i in examples])
    y = np.array([index[job.labels[i]] for i in examples])
    _, groups = np.unique([job.groups[i] for i in examples], return_inverse=True)
    with _trainer_progress(report):
        head, validation = train_head(
            x,
            y,
            names,
            groups=groups,
            options=HeadOptions(folds=job.folds, repeats=job.repeats),
            # The whole embedding: the backbone's tuned features were not tuned on the
            # server's own characters (see trainer.train.train).
            gallery_dims=None,
        )
    gate = None
    if job.serving_set is not None:
        serving = [i for i in job.serving_set if i in job.labels]

        def fold_done(done: int, folds: int) -> None:
            report("checking", done, folds)

        report("checking", 0, 1)
        gate = compare(features, job.labels, job.groups, serving, examples, on_fold=fold_done)
    return RefitResult(
        head.to_bytes(), tuple(names), validation.accuracy, examples, gate, embedded, unreadable
    )


def _embed_missing(
    job: RefitJob, backbone: BackboneInfo, report: Report
) -> tuple[dict[int, bytes], list[int]]:
    if not job.crops:
        return {}, []
    total = len(job.crops)
    report("embedding", 0, total)
    embedder = FaceEmbedder(
        job.backbone_path, input_size=backbone.input_size, feature_dim=backbone.feature_dim
    )
    embedded, unreadable = {}, []
    for done, (example_id, crop) in enumerate(job.crops.items(), start=1):
        try:
            views = example_views(crop, backbone.crop)
        except BotError:
            unreadable.append(example_id)
        else:
            embedded[example_id] = features_to_bytes(embed_both_ways(embedder, views))
        report("embedding", done, total)
    return embedded, unreadable


_steps: Any = None
"""In a refit process: the queue its steps go to (set when the process starts)."""


def _start_refit_process(steps: Any) -> None:
    global _steps
    _steps = steps
    os.nice(NICENESS)


def _queue_report(stage: str, done: int, total: int) -> None:
    _steps.put((stage, done, total))


def _refit_in_process(job: RefitJob) -> RefitResult:
    return refit(job, _queue_report)


async def run_refit(job: RefitJob, on_step: OnStep | None = None) -> RefitResult:
    """Run ``job`` in a new process at a lower CPU priority, telling ``on_step`` its steps
    as they come; TrainingError if the process dies.

    One process per refit, ended with it, so its memory goes back to the system (a pool
    would keep an idle process of a few hundred MB); starting one costs about a second.
    """
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    steps = context.Queue()
    # The queue reaches the process as it starts (a queue cannot be a task's argument).
    executor = ProcessPoolExecutor(
        1, mp_context=context, initializer=_start_refit_process, initargs=(steps,)
    )
    reading = asyncio.create_task(_read_steps(steps, on_step))
    try:
        return await loop.run_in_executor(executor, _refit_in_process, job)
    except BrokenProcessPool as exc:
        raise TrainingError(
            "The training process stopped unexpectedly (perhaps for lack of memory)."
        ) from exc
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        # Waiting ends at once after the refit; off the event loop all the same.
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        steps.close()


async def _read_steps(steps: Any, on_step: OnStep | None) -> None:
    """Hand the refit process's steps to ``on_step`` until cancelled."""
    while True:
        try:
            stage, done, total = await asyncio.to_thread(steps.get, True, POLL_SECONDS)
        except queue.Empty:
            continue
        if on_step is not None:
            try:
                await on_step(Step(stage, done, total))
            except Exception:  # progress is for show: it never stops a training
                log.warning("a refit step could not be shown", exc_info=True)
