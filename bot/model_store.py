"""The models every bot process serves, from the database: the base model and each
server's own.

What a model needs at run time is in the database (``backbones``, ``model_versions``), so
processes on different machines share nothing but ``DATABASE_URL``. Each process keeps:

- backbone files in ``MODEL_DIR/backbones/<sha256>.tflite`` (a cache: written once from the
  database, checked against their hash);
- loaded heads in a bounded LRU cache (``MODEL_CACHE_SIZE``); a server answered by the base
  model shares the base's head;
- the id of the last serving change it saw: :meth:`ModelStore.follow_changes` (polled every
  few seconds) drops what it cached of any scope whose serving model changed since.

A bundle directory (what ``python -m trainer train`` writes) is installed with
:meth:`ModelStore.install`; ``python -m bot classify --model DIR`` still reads one directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
import uuid
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BundleError, DatabaseUnavailableError, StorageError
from bot.storage.db import Storage
from bot.storage.model_versions import ModelVersionInfo, StoredHead
from bot.storage.scope import Scope
from bot.vision.bundle import BackboneInfo, ModelBundle
from bot.vision.classifier import FaceClassifier
from bot.vision.embedder import FaceEmbedder
from bot.vision.head import Head, SharedGallery, sha256_hex

log = logging.getLogger(__name__)

BACKBONE_DIR = "backbones"


def check_runnable(bundle: ModelBundle) -> None:
    """Raise ``BundleError`` unless LiteRT loads the bundle's model with the shapes its
    ``model.json`` and ``labels.txt`` describe (``load_bundle`` only checks the files)."""
    FaceClassifier(bundle)


def check_backbone(model: Path | bytes, backbone: BackboneInfo) -> None:
    """Raise ``BundleError`` unless LiteRT runs ``model`` with ``backbone``'s shapes."""
    FaceEmbedder(model, input_size=backbone.input_size, feature_dim=backbone.feature_dim)


class GalleryRows:
    """The gallery rows of every head a process holds, each kept once.

    A server's head is fitted on the base's faces and the server's own, so two hundred
    servers' heads hold two hundred copies of the base's rows (measured: 1,083 MB for 200
    servers with float16 galleries). Rows are recognised by a hash of their bytes; a head
    loaded later keeps references to the rows already held and only its new rows as a block
    of its own (:class:`bot.vision.head.SharedGallery`). A block lives as long as a head
    uses it (the index holds weak references), and scores are computed exactly as on the
    head's own array.
    """

    def __init__(self) -> None:
        self._where: dict[bytes, tuple[weakref.ref[np.ndarray], int]] = {}

    def __len__(self) -> int:
        """Rows held (in blocks some head still uses)."""
        return sum(1 for ref, _ in self._where.values() if ref() is not None)

    def share(self, head: Head) -> Head:
        """``head`` with its gallery made of rows held already and a block of its new ones
        (its gallery labels reordered to match; the scores do not change)."""
        gallery = np.asarray(head.gallery, np.float32)
        digests = [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in gallery]
        found: dict[int, tuple[np.ndarray, list[int], list[int]]] = {}
        new: list[int] = []
        for position, digest in enumerate(digests):
            where = self._where.get(digest)
            block = where[0]() if where is not None else None
            if where is None or block is None:
                new.append(position)
                continue
            _, positions, rows = found.setdefault(id(block), (block, [], []))
            positions.append(position)
            rows.append(where[1])
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        order: list[int] = []
        for block, positions, rows in found.values():
            parts.append((block, np.array(rows, np.int64)))
            order += positions
        if new:
            block = np.ascontiguousarray(gallery[new])
            block.setflags(write=False)
            new_digests = [digests[i] for i in new]

            def forget_block(_: weakref.ref[np.ndarray], keys: list[bytes] = new_digests) -> None:
                self._drop(keys)

            ref = weakref.ref(block, forget_block)
            for row, digest in enumerate(new_digests):
                self._where[digest] = (ref, row)
            parts.append((block, np.arange(len(new))))
            order += new
        if not parts:  # an empty gallery stays as it is
            return head
        return dataclasses.replace(
            head,
            gallery=SharedGallery(tuple(parts)),
            gallery_labels=head.gallery_labels[np.array(order, np.int64)],
        )

    def _drop(self, keys: list[bytes]) -> None:
        """Forget the rows of a block no head uses any more."""
        for key in keys:
            where = self._where.get(key)
            if where is not None and where[0]() is None:
                del self._where[key]


def new_version(head_bytes: bytes) -> str:
    """A version name for a new head: when it was made, what it is, and a random part (two
    servers may refit the same head in the same second)."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{sha256_hex(head_bytes)[:8]}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class ServingModel:
    """A model ready to answer: its head, and the backbone file it runs on."""

    version: str
    scope: Scope
    """Whose model it is: a server's own, or the base (``Scope.BASE``)."""
    head: Head
    backbone: BackboneInfo
    backbone_path: Path

    @property
    def labels(self) -> tuple[str, ...]:
        """The labels the head names."""
        return self.head.labels


class ModelStore:
    """Loads and caches the serving models of every scope; installs and promotes versions."""

    def __init__(self, storage: Storage, cache_dir: Path, *, cache_size: int = 256) -> None:
        self.storage = storage
        self.cache_dir = cache_dir
        self.cache_size = cache_size
        self._by_scope: OrderedDict[int, ServingModel | None] = OrderedDict()
        self._backbones: dict[str, tuple[BackboneInfo, Path]] = {}
        self._last_change: int | None = None
        self._generation = 0
        self._checked: set[str] = set()
        self.rows = GalleryRows()

    async def serving(self, guild_id: int | None) -> ServingModel | None:
        """The model answering server ``guild_id`` (its own, else the base's; a DM gets the
        base's), or None when there is none."""
        scope = Scope.BASE if guild_id is None else Scope.of_guild(guild_id)
        if scope.id in self._by_scope:
            self._by_scope.move_to_end(scope.id)
            return self._by_scope[scope.id]
        generation = self._generation
        try:
            stored = await self.storage.model_versions.serving_head(scope)
        except DatabaseUnavailableError:
            # Answering goes on while the database is away: with the base model, if loaded.
            base = self._by_scope.get(Scope.BASE.id)
            if base is None:
                raise
            log.warning("database unavailable: server %s answered by the base model", guild_id)
            return base
        model = None if stored is None else await self._load(stored)
        if generation == self._generation:  # no change arrived while it loaded
            self._remember(scope.id, model)
        return model

    async def base_model(self) -> ServingModel | None:
        """The base model (what a server without its own model is answered by)."""
        return await self.serving(None)

    def _remember(self, scope_id: int, model: ServingModel | None) -> None:
        self._by_scope[scope_id] = model
        self._by_scope.move_to_end(scope_id)
        while len(self._by_scope) > self.cache_size:
            self._by_scope.popitem(last=False)

    async def _load(self, stored: StoredHead) -> ServingModel:
        # A head served to many servers is loaded once: reuse the base's when it is this one.
        for cached in self._by_scope.values():
            if cached is not None and cached.version == stored.version:
                return cached
        backbone, path = await self.backbone(stored.backbone_sha256)
        head = await asyncio.to_thread(lambda: self.rows.share(Head.from_bytes(stored.head)))
        if head.dim != backbone.embedding_dim:
            raise BundleError(
                f"model {stored.version} takes embeddings of {head.dim} numbers, "
                f"its backbone gives {backbone.embedding_dim}"
            )
        return ServingModel(stored.version, stored.scope, head, backbone, path)

    async def backbone(self, sha256: str) -> tuple[BackboneInfo, Path]:
        """Backbone ``sha256``'s description and local file (fetched from the database once
        per process and machine, and checked against its hash)."""
        known = self._backbones.get(sha256)
        if known is not None:
            return known
        path = self.cache_dir / BACKBONE_DIR / f"{sha256}.tflite"
        info = await self.storage.backbones.info(sha256)
        if info is None:
            raise BundleError(f"backbone {sha256[:12]} is not in the database")
        backbone = BackboneInfo.from_dict(info)
        if not await asyncio.to_thread(_cached_file_matches, path, sha256):
            stored = await self.storage.backbones.get(sha256)
            assert stored is not None  # its info was just read, and backbones are never deleted
            try:
                await asyncio.to_thread(_write_atomically, path, stored.model)
            except OSError as exc:
                raise BundleError(
                    f"backbone {sha256[:12]} cannot be cached in {path.parent}: "
                    f"{exc.strerror or exc}"
                ) from exc
        self._backbones[sha256] = (backbone, path)
        return backbone, path

    async def follow_changes(self) -> bool:
        """Drop what is cached of every scope whose serving model changed since the last
        call (in any process); True when something changed."""
        last = await self.storage.model_versions.last_change()
        if self._last_change is None or last == self._last_change:
            self._last_change = last
            return False
        changes = await self.storage.model_versions.changes_since(self._last_change)
        self._last_change = max([last, *(c.id for c in changes)])
        self.forget({change.scope for change in changes})
        return bool(changes)

    def forget(self, scopes: set[Scope]) -> None:
        """Drop the cached models of ``scopes`` (every server answered by the base, when the
        base is one of them)."""
        self._generation += 1
        if any(scope.is_base for scope in scopes):
            stale = [
                scope_id
                for scope_id, model in self._by_scope.items()
                if model is None or model.scope.is_base
            ]
        else:
            stale = []
        for scope_id in {*stale, *(scope.id for scope in scopes)}:
            self._by_scope.pop(scope_id, None)
        log.info("serving models changed in %d scope(s)", len(scopes))

    async def store_backbone(self, model: bytes, backbone: BackboneInfo) -> None:
        """Put a backbone in the database (once), after checking that LiteRT runs it."""
        if sha256_hex(model) != backbone.sha256:
            raise BundleError("the backbone's bytes do not match its checksum")
        if backbone.sha256 not in self._checked:
            await asyncio.to_thread(check_backbone, model, backbone)
            self._checked.add(backbone.sha256)
        await self.storage.backbones.put(backbone.sha256, backbone.name, backbone.to_dict(), model)

    async def install(
        self,
        bundle: ModelBundle,
        scope: Scope = Scope.BASE,
        *,
        example_ids: list[int] | None = None,
    ) -> ModelVersionInfo:
        """Store ``bundle``'s backbone and head as a version of ``scope`` and make it serve;
        installing a bundle again makes its version serve again."""
        model = await asyncio.to_thread(bundle.model_path.read_bytes)
        await self.store_backbone(model, bundle.backbone)
        head = bundle.head.to_bytes()
        try:
            await self.storage.model_versions.register(
                scope,
                bundle.version,
                backbone_sha256=bundle.backbone.sha256,
                head=head,
                labels=bundle.labels,
                metrics=dict(bundle.info.get("metrics", {})),
                training_size=int(bundle.info.get("training", {}).get("faces", 0)),
                example_ids=example_ids,
                info=bundle_summary(bundle.info),
                path=str(bundle.path),
            )
        except StorageError:
            known = await self.storage.model_versions.get(scope, bundle.version)
            if known is None or not known.servable:
                raise
        return await self.promote(scope, bundle.version)

    async def promote(self, scope: Scope, version: str) -> ModelVersionInfo:
        """Make ``version`` serve ``scope`` in every process (this one at once)."""
        info = await self.storage.model_versions.activate(scope, version)
        self.forget({scope})
        log.info("model %s now serves %s", version, describe(scope))
        return info

    async def stop_own_model(self, scope: Scope) -> ModelVersionInfo | None:
        """Answer server ``scope`` with the base model again; the version that served it."""
        info = await self.storage.model_versions.deactivate(scope)
        self.forget({scope})
        return info


def bundle_summary(info: dict[str, Any]) -> dict[str, Any]:
    """What ``model.json`` says that ``/model`` shows, without the long lists."""
    keep = ("created_at", "detectors", "unsure", "training", "backbone")
    summary = {key: info[key] for key in keep if key in info}
    if "training" in summary:
        summary["training"] = {
            k: v for k, v in summary["training"].items() if k != "skipped_pictures"
        }
    return summary


def describe(scope: Scope) -> str:
    """``server 123`` or ``the base`` (for logs)."""
    return "the base" if scope.is_base else f"server {scope.id}"


def _cached_file_matches(path: Path, sha256: str) -> bool:
    try:
        return sha256_hex(path.read_bytes()) == sha256
    except OSError:
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
