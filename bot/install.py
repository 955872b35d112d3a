"""``python -m bot install-base BUNDLE --data DIR``: the operator's base model into the database.

The bundle's backbone and head are stored as the base's serving version, and the pictures
it was trained on are imported once as base examples: for each picture, the face the
trainer learnt from (``faces.json`` in the bundle says which; for a bundle without it, or a
picture whose faces differ now, the face most like its character's other faces), its
stored crop as the bot keeps every example's, its embedding by the bundle's backbone, its
hash and its path under ``DIR``. A picture imported before is not imported again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BotError, BundleError
from bot.model_store import ModelStore
from bot.names import display_name
from bot.refit import features_to_bytes
from bot.storage.db import Storage
from bot.storage.scope import Scope
from bot.vision.bundle import ModelBundle, load_bundle
from bot.vision.crop import context_crop
from bot.vision.decode import decode_image
from bot.vision.embedder import FaceEmbedder
from bot.vision.examples import embed_both_ways, example_views
from bot.vision.faces import FaceFinder, default_face_finder
from bot.vision.recognizer import UNDETECTED

log = logging.getLogger(__name__)

FACES_FILE = "faces.json"
Report = Callable[[str], None]


@dataclass(frozen=True)
class PictureFaces:
    """The faces of one training picture: stored crops and their embeddings (``faces×2×D``)."""

    file: str
    sha256: str
    folder: str
    crops: tuple[bytes, ...]
    features: np.ndarray
    chosen: int | None
    """The face the trainer used, when ``faces.json`` says so and it is found again."""


@dataclass(frozen=True)
class InstallResult:
    """What ``install-base`` did."""

    version: str
    labels: tuple[str, ...]
    imported: int
    already_there: int
    skipped: tuple[str, ...]


def read_manifest(bundle: ModelBundle) -> dict[str, dict[str, Any]]:
    """``faces.json`` by picture hash (empty for a bundle without one)."""
    path = bundle.path / FACES_FILE
    if not path.is_file():
        return {}
    try:
        entries = json.loads(path.read_text("utf-8"))
        return {str(e["sha256"]): e for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BundleError(f"{path} cannot be read: {exc}") from exc


def picture_faces(
    path: Path,
    root: Path,
    finder: FaceFinder,
    embedder: FaceEmbedder,
    bundle: ModelBundle,
    manifest: dict[str, dict[str, Any]],
) -> PictureFaces | str:
    """The faces of the picture at ``path``, or why it is skipped."""
    name = path.relative_to(root).as_posix()
    try:
        data = path.read_bytes()
        decoded = decode_image(data)
    except OSError as exc:
        return f"{name}: {exc.strerror}"
    except BotError as exc:
        return f"{name}: {exc.user_message}"
    digest = hashlib.sha256(data).hexdigest()
    faces = [face for face in finder.find(decoded.pixels) if face.detector not in UNDETECTED]
    if not faces:
        return f"{name}: no face found"
    crops = tuple(context_crop(decoded.pixels, face.box, bundle.crop.lift) for face in faces)
    features = np.stack(
        [embed_both_ways(embedder, example_views(crop, bundle.crop)) for crop in crops]
    )
    entry = manifest.get(digest)
    chosen = None
    if entry is not None:
        index = int(entry.get("face", -1))
        if 0 <= index < len(faces) and faces[index].detector == entry.get("detector"):
            chosen = index
    return PictureFaces(name, digest, path.parent.name, crops, features, chosen)


def choose(pictures: list[PictureFaces]) -> list[int]:
    """The face to import from each picture: the trainer's, else (several faces, no record)
    the one most like its character's other faces."""
    from trainer.head import choose_faces

    folders = sorted({p.folder for p in pictures})
    labels = np.array([folders.index(p.folder) for p in pictures])
    # A face already decided is the picture's only candidate, so it stays chosen.
    candidates = [p.features[[p.chosen]] if p.chosen is not None else p.features for p in pictures]
    picked = choose_faces(candidates, labels)
    return [p.chosen if p.chosen is not None else i for p, i in zip(pictures, picked, strict=True)]


async def install_base(
    storage: Storage,
    store: ModelStore,
    bundle_dir: Path,
    data: Path | None,
    *,
    cascade_path: Path | None = None,
    report: Report = log.info,
) -> InstallResult:
    """Install the bundle at ``bundle_dir`` as the base model, importing ``data`` once."""
    bundle = await asyncio.to_thread(load_bundle, bundle_dir)
    await store.store_backbone(bundle.model_path.read_bytes(), bundle.backbone)
    imported = already = 0
    skipped: list[str] = []
    if data is not None:
        pictures, skipped = await asyncio.to_thread(
            _read_pictures, bundle, data, cascade_path, report
        )
        chosen = await asyncio.to_thread(choose, pictures) if pictures else []
        embeddings: dict[int, bytes] = {}
        for picture, face in zip(pictures, chosen, strict=True):
            example_id = await storage.examples.add_imported(
                display_name(picture.folder),
                picture.crops[face],
                picture_sha256=picture.sha256,
                origin=picture.file,
            )
            if example_id is None:
                already += 1
                continue
            imported += 1
            embeddings[example_id] = features_to_bytes(picture.features[face])
        await storage.examples.store_embeddings(bundle.backbone.sha256, embeddings)
    # Every label is a base character, pictures imported or not: servers find them by name
    # ("someone else…", autocomplete) as they find their own.
    for label in bundle.labels:
        await storage.characters.get_or_create(Scope.BASE, display_name(label))
    base_examples = [ref.id for ref in await storage.examples.training_refs(Scope.BASE)]
    version = await store.install(bundle, Scope.BASE, example_ids=base_examples or None)
    return InstallResult(version.version, bundle.labels, imported, already, tuple(skipped))


def _read_pictures(
    bundle: ModelBundle, data: Path, cascade_path: Path | None, report: Report
) -> tuple[list[PictureFaces], list[str]]:
    from trainer.dataset import scan_folder

    manifest = read_manifest(bundle)
    finder = default_face_finder(cascade_path)
    embedder = FaceEmbedder(
        bundle.model_path,
        input_size=bundle.backbone.input_size,
        feature_dim=bundle.backbone.feature_dim,
    )
    pictures: list[PictureFaces] = []
    skipped: list[str] = []
    listed = scan_folder(data)
    for n, picture in enumerate(listed, start=1):
        found = picture_faces(picture.path, data, finder, embedder, bundle, manifest)
        if isinstance(found, str):
            skipped.append(found)
        else:
            pictures.append(found)
        if n % 20 == 0 or n == len(listed):
            report(f"read {n} of {len(listed)} pictures")
    return pictures, skipped
