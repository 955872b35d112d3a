"""A server's retraining without TensorFlow: embed its new examples with the shared backbone
(LiteRT), refit a head on the base's and the server's examples, and gate it.

:func:`refit` is a plain function of plain values so that it runs in a separate process at
a lower CPU priority (:func:`run_refit`): answering pictures keeps its cores while a server
retrains, and the bot process never holds the work's memory.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BotError, TrainingError
from bot.gate import GateReport, compare
from bot.vision.bundle import BackboneInfo
from bot.vision.embedder import FaceEmbedder
from bot.vision.examples import embed_both_ways, example_views

log = logging.getLogger(__name__)

NICENESS = 19
"""The refit process's CPU priority is the lowest: it runs on what answering leaves."""
FEATURES_DTYPE = np.float32


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


def refit(job: RefitJob) -> RefitResult:
    """Embed what is missing, fit and cross-validate the head, and gate it (slow: a few
    seconds for a hundred pictures; run it with :func:`run_refit`)."""
    from trainer.head import HeadOptions, train_head

    backbone = BackboneInfo.from_dict(job.backbone)
    dim = backbone.embedding_dim
    features = {i: features_from_bytes(data, dim) for i, data in job.cached.items()}
    embedded, unreadable = _embed_missing(job, backbone)
    features |= {i: features_from_bytes(data, dim) for i, data in embedded.items()}
    examples = [i for i in job.labels if i in features]
    names = sorted({job.labels[i] for i in examples})
    counts = {name: sum(job.labels[i] == name for i in examples) for name in names}
    enough = [name for name, count in counts.items() if count >= 2]
    if len(enough) < 2:
        raise TrainingError(
            "Not enough confirmed data: at least two characters with two pictures each are "
            f"needed (have {counts or 'none'})."
        )
    examples = [i for i in examples if counts[job.labels[i]] >= 2]
    names = enough
    index = {name: n for n, name in enumerate(names)}
    x = np.stack([features[i] for i in examples])
    y = np.array([index[job.labels[i]] for i in examples])
    _, groups = np.unique([job.groups[i] for i in examples], return_inverse=True)
    head, validation = train_head(
        x, y, names, groups=groups, options=HeadOptions(folds=job.folds, repeats=job.repeats)
    )
    gate = None
    if job.serving_set is not None:
        serving = [i for i in job.serving_set if i in job.labels]
        gate = compare(features, job.labels, job.groups, serving, examples)
    return RefitResult(
        head.to_bytes(), tuple(names), validation.accuracy, examples, gate, embedded, unreadable
    )


def _embed_missing(job: RefitJob, backbone: BackboneInfo) -> tuple[dict[int, bytes], list[int]]:
    if not job.crops:
        return {}, []
    embedder = FaceEmbedder(
        job.backbone_path, input_size=backbone.input_size, feature_dim=backbone.feature_dim
    )
    embedded, unreadable = {}, []
    for example_id, crop in job.crops.items():
        try:
            views = example_views(crop, backbone.crop)
        except BotError:
            unreadable.append(example_id)
            continue
        embedded[example_id] = features_to_bytes(embed_both_ways(embedder, views))
    return embedded, unreadable


def _lower_priority() -> None:
    os.nice(NICENESS)


async def run_refit(job: RefitJob) -> RefitResult:
    """Run ``job`` in a new process at a lower CPU priority; TrainingError if it dies.

    One process per refit, ended with it, so its memory goes back to the system (a pool
    would keep an idle process of a few hundred MB); starting one costs about a second.
    """
    loop = asyncio.get_running_loop()
    executor = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=_lower_priority
    )
    try:
        return await loop.run_in_executor(executor, refit, job)
    except BrokenProcessPool as exc:
        raise TrainingError(
            "The training process stopped unexpectedly (perhaps for lack of memory)."
        ) from exc
    finally:
        # Waiting ends at once after the refit; off the event loop all the same.
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
