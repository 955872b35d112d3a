"""Recognition off the event loop: a bounded pool of worker threads, each with its own
recognizer, following the model directory's serving bundle (hot swap without a restart)."""

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

from bot.errors import BotError, BusyError, NoModelError
from bot.models import ModelStore, check_runnable
from bot.vision.bundle import ModelBundle
from bot.vision.crop import context_crop
from bot.vision.decode import DecodeLimits, decode_image
from bot.vision.draw import SURE, UNSURE, numbered_faces
from bot.vision.faces import default_face_finder
from bot.vision.recognizer import Recognition, Recognizer

log = logging.getLogger(__name__)


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

    async def recognize(self, data: bytes) -> Answer:
        """Recognise ``data`` in a worker, using this place."""
        return await self._service._run(data)


class RecognitionService:
    """Runs recognitions on ``workers`` threads with at most ``queue_size`` waiting.

    When the queue is full, :meth:`recognize` raises :class:`BusyError` at once instead of
    piling up memory. Each worker keeps its own recognizer (LiteRT interpreters and OpenCV
    cascades are not shared between threads) and rebuilds it when the serving model changes.
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
        self._bundle: ModelBundle | None = None
        self._bundle_lock = threading.Lock()
        self._refused: str | None = None
        self.handled = 0

    @property
    def pending(self) -> int:
        """Pictures queued or being recognised right now."""
        return self._pending

    @property
    def model_version(self) -> str | None:
        """The version of the bundle in use (None before a model exists)."""
        return self._bundle.version if self._bundle else None

    @property
    def bundle(self) -> ModelBundle | None:
        """The bundle in use."""
        return self._bundle

    def refresh(self) -> bool:
        """Follow the model directory's pointer; True when the serving model changed.

        A bundle that cannot serve (damaged files, or a model LiteRT refuses) is not
        swapped in: the current one keeps serving and the refusal is logged once.
        """
        version = None
        try:
            version = self.store.current_version()
            with self._bundle_lock:
                if version == (self._bundle.version if self._bundle else None):
                    return False
                if version is None:
                    self._bundle = None
                    return True
                bundle = self.store.load(version)
                check_runnable(bundle)
                self._bundle = bundle
                self._refused = None
        except (BotError, OSError) as exc:
            if version is None or version != self._refused:
                self._refused = version
                log.error(
                    "model %s cannot serve, keeping model %s: %s", version, self.model_version, exc
                )
            return False
        log.info("serving model %s", bundle.version)
        return True

    def _recognizer(self) -> Recognizer:
        bundle = self._bundle
        if bundle is None:
            raise NoModelError()
        current: Recognizer | None = getattr(self._local, "recognizer", None)
        if current is None or current.bundle is not bundle:
            finder = default_face_finder(self.cascade_path)
            current = Recognizer(bundle, finder, self.limits)
            self._local.recognizer = current
        return current

    def _work(self, data: bytes) -> Answer:
        started = time.perf_counter()
        decoded = decode_image(data, self.limits)
        recognizer = self._recognizer()
        recognition = recognizer.recognize(decoded, started)
        annotated = None
        if len(recognition.faces) > 1:
            annotated = numbered_faces(
                decoded.pixels,
                [face.box for face in recognition.faces],
                [UNSURE if face.prediction.unsure else SURE for face in recognition.faces],
                decoded.scale,
            )
        contexts = tuple(
            context_crop(
                decoded.pixels, face.box.scaled(decoded.scale), recognizer.bundle.crop.lift
            )
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

    async def recognize(self, data: bytes) -> Answer:
        """Recognise a picture in a worker; raises BusyError when the queue is full."""
        async with self.reserve() as place:
            return await place.recognize(data)

    async def _run(self, data: bytes) -> Answer:
        # Outcomes and latency are counted once, in the bot's Metrics; this only counts
        # pictures the workers finished.
        answer = await asyncio.get_running_loop().run_in_executor(self._pool, self._work, data)
        self.handled += 1
        return answer

    def close(self) -> None:
        """Stop the workers (waiting for the pictures in progress)."""
        self._pool.shutdown(wait=True, cancel_futures=True)
