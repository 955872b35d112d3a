"""Retraining: export the confirmed data, run the trainer in its own process, gate, promote.

A server trains on its own confirmed examples only. A candidate replaces the serving model
only if it is at least as accurate on a fixed validation set (examples whose picture hash
falls in one fifth of the hash space, so the same examples are always held out). A
candidate or an earlier bundle that cannot serve is never promoted: the current model
keeps serving and the admin is told why.

One training per server at a time, across every process sharing the database: each run
holds the database lock ``training:<server>`` under a holder unique to the run (renewed
while it lives, so it lapses ``LOCK_TTL`` seconds after a process dies). Different
servers train at once up to ``TRAINING_CONCURRENCY`` per process; more wait their turn.
A run's staging directory carries its run token, and a run deletes another's leftovers
only when no live lock is held under that token: nothing one run does can delete the
files of a run that is still going.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import logging
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config import Settings
from bot.errors import BotError, BundleError, StorageError, TrainingBusyError, TrainingError
from bot.models import ModelStore, check_runnable
from bot.names import folder_name, normalise_name
from bot.storage.db import Storage
from bot.storage.schema import RunStatus
from bot.storage.scope import Scope
from bot.training_progress import Step, parse_step
from bot.vision.bundle import INFO_FILE, load_bundle
from bot.vision.decode import sniff_format
from bot.vision.faces import default_face_finder
from bot.vision.recognizer import Recognizer

log = logging.getLogger(__name__)

LOCK_PREFIX = "training:"
LOCK_TTL = 120.0
RENEW_EVERY = LOCK_TTL / 4
VALIDATION_MODULUS = 5
MIN_LABELS = 2
MIN_TRAINING_PICTURES = 2
DEFAULT_TIMEOUT = 3600.0
REPO_ROOT = Path(__file__).resolve().parents[1]
STAGING_PREFIX = ".candidate-"
# A staging directory, or the temporary one the trainer writes it through (".<name>.<x>.tmp").
STAGING_DIR = re.compile(r"^\.{1,2}candidate-(?P<token>[0-9a-f]{32})(?:\..*)?$")
# The last line of a traceback for an OSError: ``OSError: [Errno 28] No space left on device: '…'``.
OS_ERROR_LINE = re.compile(r"^\w+: \[Errno \d+\] (?P<reason>[^:]+)")

Progress = Callable[[str | Step], Awaitable[None]]
"""Told a sentence about the run, or a step of a stage (see ``bot.training_progress``)."""
Example = tuple[str, bytes]


def lock_name(guild_id: int) -> str:
    """The database lock a server's training holds."""
    return f"{LOCK_PREFIX}{guild_id}"


def picture_suffix(data: bytes) -> str:
    """The file name ending for stored picture bytes (crops are JPEG; older ones PNG)."""
    return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}.get(
        sniff_format(data) or "", ".bin"
    )


def is_validation(png: bytes) -> bool:
    """Whether an example belongs to the fixed validation set (one fifth, by content hash)."""
    return int.from_bytes(hashlib.sha256(png).digest()[:8], "big") % VALIDATION_MODULUS == 0


@dataclass(frozen=True)
class SplitSummary:
    """How the dataset was split: pictures per label on each side."""

    training: dict[str, int]
    validation: dict[str, int]

    @property
    def trainable(self) -> bool:
        """True when at least two labels have at least two training pictures each."""
        enough = [n for n in self.training.values() if n >= MIN_TRAINING_PICTURES]
        return len(enough) >= MIN_LABELS


def write_split(examples: list[Example], root: Path) -> tuple[SplitSummary, list[Example]]:
    """Write ``root/train/<label>/<n>.png`` and ``root/validation/...``; returns the
    summary and the validation examples."""
    training: Counter[str] = Counter()
    validation: Counter[str] = Counter()
    held_out: list[Example] = []
    for label, png in examples:
        side, counter = ("validation", validation) if is_validation(png) else ("train", training)
        if side == "validation":
            held_out.append((label, png))
        folder = root / side / folder_name(label)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{counter[label]}{picture_suffix(png)}").write_bytes(png)
        counter[label] += 1
    (root / "train").mkdir(parents=True, exist_ok=True)
    return SplitSummary(dict(training), dict(validation)), held_out


def count_pictures(per_character: dict[str, int]) -> str:
    """``Nishikino Maki: 3, Hoshizora Rin: 1`` (or ``none``), most pictures first."""
    ranked = sorted(per_character.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name}: {count}" for name, count in ranked) or "none"


def should_promote(
    candidate_accuracy: float | None, current_accuracy: float | None
) -> tuple[bool, str]:
    """The gate: promote unless the candidate is measurably worse than the serving model.

    ``None`` for the current accuracy means there is no serving model; ``None`` for the
    candidate means there was no validation picture to measure with.
    """
    if current_accuracy is None:
        return True, "there was no model before"
    if candidate_accuracy is None:
        return True, "accepted without a check: no validation pictures yet"
    if candidate_accuracy >= current_accuracy:
        return True, (
            f"validation accuracy {candidate_accuracy:.1%} "
            f"(the previous model had {current_accuracy:.1%})"
        )
    return False, (
        f"the new model is worse on the validation pictures: {candidate_accuracy:.1%} "
        f"against {current_accuracy:.1%} for the current one, which keeps serving"
    )


def bundle_problem(exc: BundleError, path: Path, version: str) -> str:
    """A ``BundleError``'s message with the bundle's path replaced by its version."""
    return str(exc).replace(f"{path}{os.sep}", "").replace(str(path), version)


def failure_message(exc: BaseException) -> str:
    """What a training run that ended with ``exc`` is recorded with."""
    if isinstance(exc, BotError):
        return exc.user_message
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "interrupted: the bot stopped during the training"
    return f"failed unexpectedly ({exc.__class__.__name__})"


def trainer_failure(returncode: int, last_line: str) -> str:
    """Why the trainer process failed, from its exit status and last line on stderr."""
    if returncode < 0:
        name = signal.Signals(-returncode).name
        return f"the trainer process was killed ({name}), perhaps for lack of memory"
    if match := OS_ERROR_LINE.match(last_line):
        return match["reason"]
    return last_line.removeprefix("error: ")[:300] or f"exit code {returncode}"


@dataclass(frozen=True)
class Evaluation:
    """A model's answers on the validation pictures: right ones and all, per character key."""

    right: dict[str, int]
    total: dict[str, int]

    @property
    def accuracy(self) -> float:
        """Top-1 accuracy over every validation picture."""
        return sum(self.right.values()) / max(sum(self.total.values()), 1)


def evaluate(bundle_path: Path, validation: list[Example], cascade_path: Path | None) -> Evaluation:
    """The bundle's answers on the validation pictures (no face counts as wrong; labels the
    bundle does not know are wrong too)."""
    recognizer = Recognizer(load_bundle(bundle_path), default_face_finder(cascade_path))
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for label, png in validation:
        key = normalise_name(label)
        total[key] += 1
        try:
            faces = recognizer.recognize_bytes(png).faces
        except BotError:
            continue
        if faces and normalise_name(faces[0].prediction.best.label) == key:
            right[key] += 1
    return Evaluation(dict(right), dict(total))


def per_character(
    candidate: Evaluation | None, current: Evaluation | None, names: dict[str, str]
) -> dict[str, dict[str, int | None]]:
    """For each validation character (display name): right answers of the current model
    (``before``; None without one), of the new one (``after``), and pictures (``of``)."""
    if candidate is None:
        return {}
    return {
        names.get(key, key): {
            "before": None if current is None else current.right.get(key, 0),
            "after": candidate.right.get(key, 0),
            "of": count,
        }
        for key, count in sorted(candidate.total.items())
    }


@dataclass(frozen=True)
class TrainingOutcome:
    """How a retraining ended."""

    promoted: bool
    message: str
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class TrainingManager:
    """Runs one retraining at a time and owns the model directory's pointer moves."""

    def __init__(
        self,
        storage: Storage,
        model_store: ModelStore,
        settings: Settings,
        *,
        instance: str = "bot",
        timeout: float = DEFAULT_TIMEOUT,
        python: str = sys.executable,
    ) -> None:
        self.storage = storage
        self.models = model_store
        self.settings = settings
        self.instance = instance
        self.timeout = timeout
        self.python = python
        self._slots = asyncio.Semaphore(settings.training_concurrency)

    async def dataset(self, scope: Scope) -> list[Example]:
        """Every confirmed example of ``scope`` as (display name, picture bytes)."""
        return [example async for example in self.storage.examples.iter_dataset(scope)]

    async def retrain(
        self, requested_by: int | None, guild_id: int, progress: Progress
    ) -> TrainingOutcome:
        """Train a candidate on the server's confirmed data; promote it if it passes the gate.

        Raises ``TrainingBusyError`` when the server's training already runs (or waits its
        turn); a failure raises ``TrainingError`` after recording it, leaving the current
        model serving.
        """
        token = uuid.uuid4().hex
        holder = f"{self.instance}/{token}"
        name = lock_name(guild_id)
        if not await self.storage.locks.acquire(name, holder, LOCK_TTL):
            raise TrainingBusyError(
                "A training of this server is already running: its result comes in its own "
                "message; start another after it if you still need one."
            )
        log.info("training of server %s starts as run %s", guild_id, holder)
        renewing = asyncio.create_task(self._keep_lock(name, holder))
        try:
            return await self._recorded_run(requested_by, guild_id, token, progress)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            with contextlib.suppress(Exception):
                await self.storage.locks.release(name, holder)

    async def _keep_lock(self, name: str, holder: str) -> None:
        """Renew the run's lock while it lives (a dead process's lock lapses by itself)."""
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                if not await self.storage.locks.acquire(name, holder, LOCK_TTL):
                    log.warning("training run %s lost its lock %s", holder, name)
            except StorageError:
                log.warning("could not renew the lock of training run %s", holder, exc_info=True)

    async def _recorded_run(
        self, requested_by: int | None, guild_id: int, token: str, progress: Progress
    ) -> TrainingOutcome:
        run_id: int | None = None
        try:
            run_id = await self.storage.runs.start(guild_id, requested_by)
            try:
                outcome = await self._train(Scope.of_guild(guild_id), token, progress)
            except OSError as exc:
                reason = exc.strerror or exc.__class__.__name__
                raise TrainingError(f"The training could not write its files: {reason}.") from exc
        except BaseException as exc:
            if run_id is not None:
                with contextlib.suppress(Exception):
                    await self.storage.runs.finish(
                        run_id, RunStatus.FAILED, message=failure_message(exc)
                    )
            raise
        status = RunStatus.SUCCEEDED if outcome.promoted else RunStatus.REJECTED
        await self.storage.runs.finish(
            run_id,
            status,
            message=outcome.message,
            candidate_version=outcome.version,
            metrics=outcome.metrics,
        )
        return outcome

    async def _train(self, scope: Scope, token: str, progress: Progress) -> TrainingOutcome:
        examples = await self.dataset(scope)
        self.models.bundles.mkdir(parents=True, exist_ok=True)
        await self._remove_abandoned_candidates()
        with tempfile.TemporaryDirectory(prefix="animebot-train-") as tmp:
            root = Path(tmp)
            summary, validation = write_split(examples, root)
            if not summary.trainable:
                raise TrainingError(
                    f"Not enough confirmed data: {MIN_LABELS} characters with at least "
                    f"{MIN_TRAINING_PICTURES} training pictures each are needed "
                    f"(have {count_pictures(summary.training)})."
                )
            if self._slots.locked():
                await progress(
                    "Waiting for a training of another server to finish "
                    f"(at most {self.settings.training_concurrency} at a time)…"
                )
            async with self._slots:
                await progress(
                    f"Training on {sum(summary.training.values())} pictures of "
                    f"{len(summary.training)} characters "
                    f"({len(validation)} held out for validation)…"
                )
                return await self._train_and_gate(root, token, validation, summary, progress)

    async def _train_and_gate(
        self,
        root: Path,
        token: str,
        validation: list[Example],
        summary: SplitSummary,
        progress: Progress,
    ) -> TrainingOutcome:
        """Run the trainer on ``root/train`` (one of ``TRAINING_CONCURRENCY`` slots held),
        then gate its candidate."""
        staging = self.models.bundles / f"{STAGING_PREFIX}{token}"
        try:
            await self._run_trainer(root / "train", staging, progress)
            try:
                info = json.loads((staging / INFO_FILE).read_text("utf-8"))
                version = str(info["version"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise TrainingError("The trainer ended without a readable model.") from exc
            final = self.models.bundle_path(version)
            # A version names its model's checksum: a bundle already there is this one.
            if not final.exists():
                staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        await progress(Step("checking", 0, 1))
        return await self._gate(version, info, validation, sum(summary.training.values()))

    async def _remove_abandoned_candidates(self) -> None:
        """Delete staging directories of runs that no longer hold a lock (killed with their
        process); those of live runs, and anything not named like a staging directory, stay."""
        live = {
            holder.rpartition("/")[2] for holder in await self.storage.locks.holders(LOCK_PREFIX)
        }
        for path in self.models.bundles.iterdir():
            match = STAGING_DIR.match(path.name)
            if match is None or match["token"] in live:
                continue
            log.info("removing %s, left by an interrupted training", path.name)
            shutil.rmtree(path, ignore_errors=True)

    async def _check_candidate(self, version: str, validation: list[Example]) -> Evaluation | None:
        """The candidate's validation accuracy (None without validation pictures).

        A candidate that cannot serve is deleted, and TrainingError says why.
        """
        path = self.models.bundle_path(version)
        try:
            if validation:
                return await asyncio.to_thread(
                    evaluate, path, validation, self.settings.cascade_path
                )
            await asyncio.to_thread(lambda: check_runnable(load_bundle(path)))
            return None
        except BundleError as exc:
            shutil.rmtree(path, ignore_errors=True)
            raise TrainingError(
                "The new model is broken, so the current one keeps serving: "
                f"{bundle_problem(exc, path, version)}"
            ) from exc

    async def _gate(
        self, version: str, info: dict[str, Any], validation: list[Example], size: int
    ) -> TrainingOutcome:
        current = self.models.current_version()
        cascade = self.settings.cascade_path
        current_eval: Evaluation | None = None
        current_acc = None
        candidate_eval = await self._check_candidate(version, validation)
        candidate_acc = None if candidate_eval is None else candidate_eval.accuracy
        if validation:
            if current is not None:
                try:
                    current_eval = await asyncio.to_thread(
                        evaluate, self.models.bundle_path(current), validation, cascade
                    )
                    current_acc = current_eval.accuracy
                except BotError as exc:
                    log.warning("the current model %s cannot be evaluated: %s", current, exc)
                    current_acc = 0.0
        elif current is not None:
            current_acc = 0.0
        promote, reason = should_promote(candidate_acc, current_acc)
        metrics = {
            "validation_pictures": len(validation),
            "candidate_accuracy": candidate_acc,
            "current_accuracy": current_acc,
            "previous_version": current,
            "per_character": per_character(
                candidate_eval, current_eval, {normalise_name(n): n for n, _ in validation}
            ),
        }
        await self.storage.model_versions.register(
            version,
            str(self.models.bundle_path(version)),
            labels=list(info.get("labels", [])),
            metrics={**info.get("metrics", {}), **metrics},
            training_size=size,
        )
        if not promote:
            return TrainingOutcome(False, reason, version, metrics)
        await asyncio.to_thread(self.models.promote, version)
        await self.storage.model_versions.activate(version)
        return TrainingOutcome(True, f"Model {version} is now serving: {reason}.", version, metrics)

    async def _run_trainer(self, data: Path, out: Path, progress: Progress) -> None:
        """Run ``python -m trainer train`` on ``data``; its progress lines (stdout) go to
        ``progress``, its log (stderr) only explains a failure."""
        args = [
            "-m", "trainer", "train", "--data", str(data), "--out", str(out),
            "--quiet", "--progress-json", "--cache", str(self.models.root / ".cache"),
        ]  # fmt: skip
        if self.settings.cascade_path is not None:
            args += ["--cascade", str(self.settings.cascade_path)]
        process = await asyncio.create_subprocess_exec(
            self.python,
            *args,
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        last_line = ""

        async def steps() -> None:
            assert process.stdout is not None
            async for raw in process.stdout:
                step = parse_step(raw.decode("utf-8", "replace"))
                if step is not None:
                    with contextlib.suppress(Exception):
                        await progress(step)

        async def log_lines() -> None:
            nonlocal last_line
            assert process.stderr is not None
            async for raw in process.stderr:
                line = raw.decode("utf-8", "replace").strip()
                if line:
                    last_line = line

        async def follow() -> None:
            await asyncio.gather(steps(), log_lines())
            await process.wait()

        try:
            await asyncio.wait_for(follow(), self.timeout)
        except TimeoutError:
            raise TrainingError(
                f"The training took longer than {self.timeout:.0f} s and was stopped."
            ) from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if process.returncode:  # never None after wait()
            detail = trainer_failure(process.returncode, last_line)
            raise TrainingError(f"The training failed: {detail}.")

    async def rollback(self) -> str:
        """Serve the previously promoted model again; returns its version."""
        previous = await self.storage.model_versions.previous()
        version = previous.version if previous else None
        if version is None:
            current = self.models.current_version()
            older = [v for v in self.models.versions() if current is None or v < current]
            version = older[-1] if older else None
        if version is None:
            raise TrainingError("There is no earlier model to go back to.")
        try:
            await asyncio.to_thread(self.models.promote, version)
        except BundleError as exc:
            problem = bundle_problem(exc, self.models.bundle_path(version), version)
            serving = self.models.current_version() or "none"
            raise TrainingError(
                f"Model {version} is damaged, so I did not go back to it; "
                f"model {serving} keeps serving. ({problem})"
            ) from exc
        if await self.storage.model_versions.get(version) is not None:
            await self.storage.model_versions.activate(version)
        return version

    async def export_zip(self, scope: Scope) -> bytes:
        """The confirmed dataset of ``scope`` as a zip in the trainer's layout
        (``<Character_Name>/<n>.jpg``)."""
        buffer = io.BytesIO()
        counts: Counter[str] = Counter()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            async for label, png in self.storage.examples.iter_dataset(scope):
                archive.writestr(f"{folder_name(label)}/{counts[label]}{picture_suffix(png)}", png)
                counts[label] += 1
        return buffer.getvalue()
