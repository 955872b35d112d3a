"""A server's retraining: refit a head on the base's and the server's examples, gate it
against the model serving the server, and promote it for that server only.

No TensorFlow is needed: the base model's backbone (stored in the database) embeds the
server's new examples, each example's embedding is cached per backbone, and the head is
refitted and cross-validated with scikit-learn in a separate, lower-priority process
(:func:`bot.refit.run_refit`). The gate (:mod:`bot.gate`) compares the candidate with the
serving model on examples neither was trained on.

One training per server at a time, across every process sharing the database: each run
holds the database lock ``training:<server>`` under a holder unique to the run (renewed
while it lives, so it lapses ``LOCK_TTL`` seconds after a process dies). Different servers
train at once up to ``TRAINING_CONCURRENCY`` per process; more wait their turn. A run
promotes only for its own server, and promotion locks that server's versions, so two runs
can never both promote over each other unseen, and ``/rollback`` goes back to the server's
own previous version, never another server's.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import uuid
import zipfile
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.config import Settings
from bot.errors import BotError, StorageError, TrainingBusyError, TrainingError
from bot.gate import CharacterResult, GateReport
from bot.model_store import ModelStore, new_version
from bot.names import character_name, folder_name
from bot.phrases import Phrase, phrase
from bot.refit import OnStep, RefitJob, RefitResult, run_refit
from bot.storage.db import Storage
from bot.storage.examples import ExampleRef
from bot.storage.model_versions import ModelVersionInfo
from bot.storage.schema import RunStatus
from bot.storage.scope import Scope
from bot.training_progress import Step
from bot.vision.decode import sniff_format

log = logging.getLogger(__name__)

LOCK_PREFIX = "training:"
LOCK_TTL = 120.0
RENEW_EVERY = LOCK_TTL / 4
MIN_LABELS = 2
MIN_TRAINING_PICTURES = 2
DEFAULT_TIMEOUT = 600.0
NO_BASE_MODEL = (
    "No base model is installed, so there is no backbone to train on: the bot's owner "
    "installs one with `python -m bot install-base`."
)

Progress = Callable[[Phrase | Step], Awaitable[None]]
"""Told a sentence about the run, or a step of a stage (see ``bot.training_progress``)."""
Refit = Callable[[RefitJob, OnStep], Awaitable[RefitResult]]
"""Runs a refit, telling the ``OnStep`` its steps (:func:`bot.refit.run_refit`)."""


def lock_name(guild_id: int) -> str:
    """The database lock a server's training holds."""
    return f"{LOCK_PREFIX}{guild_id}"


def picture_suffix(data: bytes) -> str:
    """The file name ending for stored picture bytes (crops are JPEG; older ones PNG)."""
    return {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp"}.get(
        sniff_format(data) or "", ".bin"
    )


def failure_message(exc: BaseException) -> str:
    """What a training run that ended with ``exc`` is recorded with."""
    if isinstance(exc, BotError):
        return exc.user_message
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return "interrupted: the bot stopped during the training"
    return f"failed unexpectedly ({exc.__class__.__name__})"


def count_pictures(per_character: dict[str, int]) -> str:
    """``Nishikino Maki: 3, Hoshizora Rin: 1`` (or ``none``), most pictures first."""
    ranked = sorted(per_character.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{name}: {count}" for name, count in ranked) or "none"


def check_trainable(refs: list[ExampleRef], scope: Scope) -> None:
    """Raise TrainingError unless a head can be fitted: the server has examples of its own,
    and at least two characters have two pictures each."""
    if not any(ref.scope == scope for ref in refs):
        raise TrainingError(
            "This server has no confirmed pictures of its own yet, so a model of its own "
            "would be the base model again: teach or confirm some first."
        )
    counts = Counter(ref.key for ref in refs)
    if sum(n >= MIN_TRAINING_PICTURES for n in counts.values()) < MIN_LABELS:
        names = {ref.key: ref.name for ref in refs}
        raise TrainingError(
            "Not enough confirmed data: {characters} characters with at least "
            "{pictures} pictures each are needed (have {have}).",
            characters=MIN_LABELS,
            pictures=MIN_TRAINING_PICTURES,
            have=count_pictures({names[k]: n for k, n in counts.items()}),
        )


@dataclass(frozen=True)
class CharacterChange:
    """One character's accuracy before and after, on pictures neither model trained on."""

    name: str
    pictures: int
    right_before: int | None
    """None for a character the serving model did not know."""
    right_after: int


@dataclass(frozen=True)
class TrainingOutcome:
    """How a retraining ended: promoted or not, why, and per character before and after."""

    promoted: bool
    message: Phrase
    version: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    characters: tuple[CharacterChange, ...] = ()
    """Characters both models know."""
    new_characters: tuple[CharacterChange, ...] = ()
    """Characters only the new model knows."""


def character_changes(
    results: tuple[CharacterResult, ...], names: dict[str, str]
) -> tuple[CharacterChange, ...]:
    """The gate's per-character results under the characters' display names."""
    return tuple(
        CharacterChange(names.get(r.label, r.label), r.examples, r.right_before, r.right_after)
        for r in results
    )


def gate_metrics(report: GateReport | None) -> dict[str, Any]:
    """The gate's figures as stored with the training run and the model version."""
    if report is None:
        return {"gate": "nothing to compare with"}
    return {
        "gate": {
            "promote": report.promote,
            "compared": report.compared,
            "before": report.before,
            "after": report.after,
            "worse": report.worse,
            "better": report.better,
            "p_value": report.p_value,
        }
    }


class TrainingManager:
    """Runs one retraining per server at a time and moves each server's serving model."""

    def __init__(
        self,
        storage: Storage,
        model_store: ModelStore,
        settings: Settings,
        *,
        instance: str = "bot",
        timeout: float = DEFAULT_TIMEOUT,
        refit: Refit | None = None,
    ) -> None:
        self.storage = storage
        self.models = model_store
        self.settings = settings
        self.instance = instance
        self.timeout = timeout
        self._slots = asyncio.Semaphore(settings.training_concurrency)
        self._refit = refit or run_refit

    async def retrain(
        self, requested_by: int | None, guild_id: int, progress: Progress
    ) -> TrainingOutcome:
        """Refit server ``guild_id``'s model; promote it for the server if it passes the gate.

        Raises ``TrainingBusyError`` when the server's training already runs (or waits its
        turn); a failure raises ``TrainingError`` after recording it, leaving the serving
        model as it was.
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
            return await self._recorded_run(requested_by, guild_id, progress)
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
        self, requested_by: int | None, guild_id: int, progress: Progress
    ) -> TrainingOutcome:
        run_id: int | None = None
        try:
            run_id = await self.storage.runs.start(guild_id, requested_by)
            outcome = await self._train(Scope.of_guild(guild_id), progress)
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
            message=str(outcome.message),
            candidate_version=outcome.version,
            metrics=outcome.metrics,
        )
        return outcome

    async def _train(self, scope: Scope, progress: Progress) -> TrainingOutcome:
        base = await self.storage.model_versions.active(Scope.BASE)
        if base is None or base.backbone_sha256 is None:
            raise TrainingError(NO_BASE_MODEL)
        refs = await self.storage.examples.training_refs(scope)
        check_trainable(refs, scope)
        if self._slots.locked():
            await progress(
                phrase(
                    "Waiting for a training of another server to finish "
                    "(at most {count} at a time)…",
                    count=self.settings.training_concurrency,
                )
            )
        async with self._slots:
            own = sum(ref.scope == scope for ref in refs)
            await progress(
                phrase(
                    "Training on {total} pictures ({base} of the base model, "
                    "{own} of this server)…",
                    total=len(refs),
                    base=len(refs) - own,
                    own=own,
                )
            )
            job, serving = await self._job(scope, base.backbone_sha256, refs)
            try:
                result = await asyncio.wait_for(self._refit(job, progress), self.timeout)
            except TimeoutError:
                raise TrainingError(
                    "The training took longer than {seconds} s and was stopped.",
                    seconds=round(self.timeout),
                ) from None
        await self.storage.examples.store_embeddings(base.backbone_sha256, result.embedded)
        return await self._register_and_gate(scope, base, serving, refs, result)

    async def _job(
        self, scope: Scope, backbone_sha: str, refs: list[ExampleRef]
    ) -> tuple[RefitJob, ModelVersionInfo | None]:
        """The refit's input: embeddings cached for the backbone, crops of the others, and
        what the model serving the server now was trained on."""
        serving = await self.storage.model_versions.active(scope)
        if serving is None:
            serving = await self.storage.model_versions.active(Scope.BASE)
        serving_set = (
            None
            if serving is None
            else await self.storage.model_versions.training_set(serving.version)
        )
        backbone, path = await self.models.backbone(backbone_sha)
        ids = [ref.id for ref in refs]
        cached = await self.storage.examples.embeddings(backbone_sha, ids)
        crops = await self.storage.examples.crops(i for i in ids if i not in cached)
        job = RefitJob(
            backbone_path=path,
            backbone=backbone.to_dict(),
            labels={ref.id: ref.key for ref in refs},
            groups={ref.id: ref.group for ref in refs},
            cached=cached,
            crops=crops,
            serving_set=serving_set,
        )
        return job, serving

    async def _register_and_gate(
        self,
        scope: Scope,
        base: ModelVersionInfo,
        serving: ModelVersionInfo | None,
        refs: list[ExampleRef],
        result: RefitResult,
    ) -> TrainingOutcome:
        names = {ref.key: ref.name for ref in refs}
        version = new_version(result.head)
        report = result.gate
        metrics = {
            "top1": result.accuracy,
            "previous_version": serving.version if serving else None,
            **gate_metrics(report),
        }
        used = set(result.examples)
        own = sum(ref.scope == scope for ref in refs if ref.id in used)
        await self.storage.model_versions.register(
            scope,
            version,
            backbone_sha256=base.backbone_sha256,
            head=result.head,
            labels=result.labels,
            metrics=metrics,
            training_size=len(result.examples),
            example_ids=result.examples,
            info={
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "training": {"pictures": len(result.examples), "own": own},
                "base_version": base.version,
            },
        )
        characters = () if report is None else character_changes(report.characters, names)
        new = () if report is None else character_changes(report.new_characters, names)
        if report is not None and not report.promote:
            return TrainingOutcome(False, report.reason, version, metrics, characters, new)
        await self.models.promote(scope, version)
        reason = (
            report.reason if report is not None else phrase("there was no model to compare with")
        )
        message = phrase(
            "Model {version} now answers in this server: {reason}.", version=version, reason=reason
        )
        return TrainingOutcome(True, message, version, metrics, characters, new)

    async def rollback(self, guild_id: int, *, to_base: bool = False) -> str | None:
        """Serve server ``guild_id`` with its previous model again (never another server's);
        with ``to_base``, with the base model. Returns the version now serving it (None for
        the base model); TrainingError when there is nothing to go back to."""
        scope = Scope.of_guild(guild_id)
        if to_base:
            if await self.models.stop_own_model(scope) is None:
                raise TrainingError("The base model already answers in this server.")
            return None
        previous = await self.storage.model_versions.previous(scope)
        if previous is None:
            if await self.storage.model_versions.active(scope) is None:
                raise TrainingError("This server has no earlier model of its own to go back to.")
            raise TrainingError(
                "This server has no earlier model of its own to go back to. Use "
                "`/rollback base: True` to be answered by the base model again."
            )
        await self.models.promote(scope, previous.version)
        return previous.version

    async def export_zip(self, scope: Scope) -> bytes:
        """The confirmed dataset of ``scope`` as a zip in the trainer's layout
        (``<Character_Name>/<n>.jpg``)."""
        buffer = io.BytesIO()
        counts: Counter[str] = Counter()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            async for label, png in self.storage.examples.iter_dataset(scope):
                # As the bot shows the name: a character first named by a vote or a base
                # label is stored lowercase, and its folder sat as `emilia_re_zero/` beside
                # `Zero_Two/` (drive-through 4).
                folder = folder_name(character_name(label))
                archive.writestr(f"{folder}/{counts[label]}{picture_suffix(png)}", png)
                counts[label] += 1
        return buffer.getvalue()
