"""Recognition off the event loop: a bounded pool of worker threads, each with its own face
finder and backbone interpreters, answering each picture with its server's model (from the
model store, which follows promotions in every process)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2

from bot.errors import BusyError, NoModelError
from bot.model_store import ModelStore, ServingModel
from bot.vision.crop import context_crop
from bot.vision.decode import DecodeLimits, decode_image
from bot.vision.draw import SURE, UNSURE, numbered_faces
from bot.vision.embedder import FaceEmbedder
from bot.vision.faces import FaceFinder, default_face_finder
from bot.vision.recognizer import HeadOnBackbone, Recognition, recognize_faces

log = logging.getLogger(__name__)

MAX_BACKBONES_PER_THREAD = 4


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_cores_between(workers: int) -> None:
    """Give each of ``workers`` recognition threads its share of the cores in OpenCV.

    OpenCV runs resizing and the cascade on its own thread pool, one thread per core by
    default. With as many recognition threads as cores that pool only adds threads that
    compete for the same cores: on this project's 2-core machine with 2 workers it kept a
    third thread busy for a fifth of a core, and the engine alone ran about 4% faster without
    it. The setting is process-wide.
    """
    cv2.setNumThreads(max(1, usable_cores() // max(1, workers)))


@dataclass(frozen=True)
class Answer:
    """One picture's recognition plus what the reply and the database need."""

    recognition: Recognition
    sha256: str
    annotated_jpeg: bytes | None
    context_pngs: tuple[bytes, ...]


class Reservation:
    """A place in the recognition queue, held while a picture is downloaded and recognised."""

    def __init__(self, service: RecognitionService) -> None:
        self._service = service

    async def recognize(self, data: bytes, guild_id: int | None) -> Answer:
        """Recognise ``data`` in a worker with the model of server ``guild_id`` (its own,
        else the base model; None for a DM), using this place."""
        return await self._service._run(data, guild_id)


class RecognitionService:
    """Runs recognitions on ``workers`` threads with at most ``queue_size`` waiting.

    When the queue is full, :meth:`recognize` raises :class:`BusyError` at once instead of
    piling up memory. Each worker keeps its own face finder and one LiteRT interpreter per
    backbone (they are not shared between threads); heads are shared, read-only.
    """

    def __init__(
        self,
        store: ModelStore,
        *,
        cascade_path: Path | None = None,
        workers: int = 2,
        queue_size: int = 16,
        limits: DecodeLimits | None = None,
    ) -> None:
        self.store = store
        self.cascade_path = cascade_path
        self.workers = workers
        self.queue_size = queue_size
        self.limits = limits or DecodeLimits()
        share_cores_between(workers)
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="recognize")
        self._local = threading.local()
        self._pending = 0
        self.handled = 0

    @property
    def pending(self) -> int:
        """Pictures queued or being recognised right now."""
        return self._pending

    def _finder(self) -> FaceFinder:
        finder: FaceFinder | None = getattr(self._local, "finder", None)
        if finder is None:
            finder = self._local.finder = default_face_finder(self.cascade_path)
        return finder

    def _embedder(self, model: ServingModel) -> FaceEmbedder:
        """This thread's interpreter of the model's backbone (few backbones exist: the base
        model's, and older ones servers' models were trained on)."""
        embedders: dict[str, FaceEmbedder] | None = getattr(self._local, "embedders", None)
        if embedders is None:
            embedders = self._local.embedders = {}
        sha = model.backbone.sha256
        embedder = embedders.get(sha)
        if embedder is None:
            if len(embedders) >= MAX_BACKBONES_PER_THREAD:
                embedders.pop(next(iter(embedders)))
            embedder = embedders[sha] = FaceEmbedder(
                model.backbone_path,
                input_size=model.backbone.input_size,
                feature_dim=model.backbone.feature_dim,
            )
        return embedder

    def _work(self, data: bytes, model: ServingModel) -> Answer:
        started = time.perf_counter()
        decoded = decode_image(data, self.limits)
        running = HeadOnBackbone(
            model.version, self._embedder(model), model.head, model.backbone.crop
        )
        recognition = recognize_faces(decoded, self._finder(), running, started)
        annotated = None
        if len(recognition.faces) > 1:
            annotated = numbered_faces(
                decoded.pixels,
                [face.box for face in recognition.faces],
                [UNSURE if face.prediction.unsure else SURE for face in recognition.faces],
                decoded.scale,
            )
        contexts = tuple(
            context_crop(decoded.pixels, face.box.scaled(decoded.scale), model.backbone.crop.lift)
            for face in recognition.faces
        )
        return Answer(recognition, hashlib.sha256(data).hexdigest(), annotated, contexts)

    @asynccontextmanager
    async def reserve(self) -> AsyncIterator[Reservation]:
        """Hold a place in the queue; raises BusyError at once when the queue is full.

        Take it before downloading, so a burst of posts is turned away before its pictures
        are fetched into memory.
        """
        if self._pending >= self.workers + self.queue_size:
            raise BusyError("I'm busy with other pictures right now: try again in a moment.")
        self._pending += 1
        try:
            yield Reservation(self)
        finally:
            self._pending -= 1

    async def recognize(self, data: bytes, guild_id: int | None = None) -> Answer:
        """Recognise a picture in a worker with server ``guild_id``'s model; raises
        BusyError when the queue is full and NoModelError when no model serves it."""
        async with self.reserve() as place:
            return await place.recognize(data, guild_id)

    async def _run(self, data: bytes, guild_id: int | None) -> Answer:
        model = await self.store.serving(guild_id)
        if model is None:
            raise NoModelError()
        # Outcomes and latency are counted once, in the bot's Metrics; this only counts
        # pictures the workers finished.
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(self._pool, self._work, data, model)
        self.handled += 1
        return answer

    def close(self) -> None:
        """Stop the workers (waiting for the pictures in progress)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
