"""From a folder of labelled pictures to a checked model bundle."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from bot.errors import ImageError, TrainingError
from bot.vision.bundle import BackboneInfo, write_bundle
from bot.vision.crop import CropSettings
from bot.vision.faces import default_face_finder
from bot.vision.head import Head
from trainer import head as heads
from trainer import progress
from trainer.dataset import LabelledPicture, describe_skip, file_digest, find_faces, scan_folder
from trainer.features import CachedFaces, Embedder, EmbeddingCache
from trainer.report import confusion_png, markdown_report

log = logging.getLogger(__name__)

BACKBONES = ("mobilenet_v2",)
"""Offline backbones; any ``keras.applications`` name also works where weights can download."""


@dataclass(frozen=True)
class TrainOptions:
    """Everything that shapes a training run."""

    data: Path
    out: Path
    cache_dir: Path | None = None
    cascade_path: Path | None = None
    backbone: str = "mobilenet_v2"
    crop: CropSettings = field(default_factory=CropSettings)
    folds: int = 10
    repeats: int = 3
    regularisation: float = 100.0
    false_flag_rate: float = 0.16
    prob_weight: float = 0.5
    float16: bool = True
    progress: bool = True


@dataclass(frozen=True)
class TrainResult:
    """What a run produced: where the bundle is, its metadata, and how long each step took."""

    bundle: Path
    info: dict[str, Any]
    timings: dict[str, float]


def build_backbone(name: str, size: int) -> Any:
    """The Keras feature extractor ``name``: raw ``[0, 255]`` RGB in, pooled features out."""
    from trainer.backbone import build_keras_application_backbone, build_mobilenet_v2

    if name == "mobilenet_v2":
        return build_mobilenet_v2(size)
    return build_keras_application_backbone(name, size)


@dataclass(frozen=True)
class Gathered:
    """A usable training picture: the file, its content hash and its faces' features."""

    picture: LabelledPicture
    digest: str
    faces: CachedFaces


def _gather_faces(
    pictures: list[LabelledPicture],
    options: TrainOptions,
    embedder: Embedder,
    cache: EmbeddingCache,
) -> tuple[list[Gathered], list[str], dict[str, np.ndarray]]:
    """Faces and features of every picture: cached ones loaded, the rest detected and embedded."""
    finder = default_face_finder(options.cascade_path)
    found: dict[int, Gathered] = {}
    pending: list[tuple[int, str, np.ndarray, tuple[str, ...]]] = []
    skipped: list[str] = []
    samples: dict[str, np.ndarray] = {}
    bar = tqdm(pictures, "finding faces", disable=not options.progress)
    for index, picture in enumerate(progress.steps("faces", bar, len(pictures))):
        try:
            data = picture.path.read_bytes()
        except OSError as exc:
            skipped.append(f"{picture.path.parent.name}/{picture.path.name}: {exc.strerror}")
            continue
        digest = file_digest(data)
        hit = cache.get(digest)
        if hit is not None and len(hit.detectors):
            found[index] = Gathered(picture, digest, hit)
            continue
        try:
            views, detectors = find_faces(data, finder, options.crop)
        except ImageError as exc:
            skipped.append(describe_skip(picture, exc))
            continue
        if len(views) == 0:
            skipped.append(f"{picture.path.parent.name}/{picture.path.name}: no face found")
            continue
        pending.append((index, digest, views, detectors))
        if len(samples) < 3:
            samples[digest] = views[0]
    if pending:
        all_views = np.concatenate([views for _, _, views, _ in pending])
        features = embedder.embed(all_views)
        start = 0
        for index, digest, views, detectors in pending:
            faces = CachedFaces(features[start : start + len(views)], detectors)
            start += len(views)
            cache.put(digest, faces)
            found[index] = Gathered(pictures[index], digest, faces)
    return [found[i] for i in sorted(found)], skipped, samples


def _validate(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, options: TrainOptions
) -> heads.Validation:
    # The head's matrices are small: BLAS threads would only fight the export for the cores.
    with threadpool_limits(limits=1):
        return heads.cross_validate(
            features,
            labels,
            folds=options.folds,
            repeats=options.repeats,
            c=options.regularisation,
            prob_weight=options.prob_weight,
            groups=groups,
        )


def _export(
    backbone: Any,
    head: Head,
    options: TrainOptions,
    gathered: list[Gathered],
    samples: dict[str, np.ndarray],
) -> tuple[bytes, float]:
    """Convert the backbone to TFLite and check, on a few faces, that the head answers the
    same from its embeddings as from TensorFlow's."""
    from trainer.export import BackboneModule, check_agreement, convert

    module = BackboneModule(backbone, options.crop.size)
    model = convert(module, float16=options.float16)
    if not samples:  # everything came from the cache: re-crop a few pictures for the check
        finder = default_face_finder(options.cascade_path)
        for item in gathered[:3]:
            views, _ = find_faces(item.picture.path.read_bytes(), finder, options.crop)
            samples[item.digest] = views[0]
    return model, check_agreement(model, module, head, np.stack(list(samples.values())))


FACES_FILE = "faces.json"
"""Which face of each picture the model learnt from (``python -m bot install-base`` imports
those faces as the base's examples)."""


def faces_manifest(gathered: list[Gathered], chosen: list[int], root: Path) -> bytes:
    """``faces.json``: per training picture, its path under ``root``, hash, label, and the
    index (in the face finder's order) and detector of the face used."""
    entries = [
        {
            "file": item.picture.path.relative_to(root).as_posix(),
            "sha256": item.digest,
            "label": item.picture.label,
            "face": face,
            "detector": item.faces.detectors[face],
        }
        for item, face in zip(gathered, chosen, strict=True)
    ]
    return json.dumps(entries, indent=1).encode("utf-8")


def train(options: TrainOptions) -> TrainResult:
    """Train, validate, export and write a bundle to ``options.out``; raise TrainingError."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    pictures = scan_folder(options.data)
    counts = Counter(p.label for p in pictures)
    if len(counts) < 2:
        raise TrainingError(
            f"{options.data} needs at least two character folders with pictures "
            f"(found {len(counts)})"
        )
    backbone = build_backbone(options.backbone, options.crop.size)
    embedder = Embedder(backbone, options.backbone, options.crop, progress=options.progress)
    finder_name = default_face_finder(options.cascade_path).describe()
    cache = EmbeddingCache(options.cache_dir, embedder.fingerprint(finder_name))
    lap("setup")

    gathered, skipped, samples = _gather_faces(pictures, options, embedder, cache)
    lap("faces_and_embeddings")
    label_names = sorted({item.picture.label for item in gathered})
    per_label = Counter(item.picture.label for item in gathered)
    too_few = [label for label in label_names if per_label[label] < 2]
    if too_few or len(label_names) < 2:
        raise TrainingError(
            "every character needs at least two usable pictures; too few for: "
            + ", ".join(too_few or label_names)
        )
    labels = np.array([label_names.index(item.picture.label) for item in gathered])
    chosen = heads.choose_faces([item.faces.features for item in gathered], labels)
    features = np.stack([g.faces.features[i] for g, i in zip(gathered, chosen, strict=True)])
    detectors = Counter(g.faces.detectors[i] for g, i in zip(gathered, chosen, strict=True))

    # Cross-validation only sets the unsure threshold (model.json), so it runs in a
    # thread while the final model is exported: the two steps use both cores.
    _, groups = np.unique([item.digest for item in gathered], return_inverse=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        progress.report("validation", 0, 1)
        pending_validation = pool.submit(_validate, features, labels, groups, options)
        progress.report("export", 0, 1)
        head = heads.fit_head(features, labels, label_names, c=options.regularisation)
        model, agreement = _export(backbone, head, options, gathered, samples)
        progress.report("export", 1, 1)
        validation = pending_validation.result()
        progress.report("validation", 1, 1)
    rule = heads.choose_unsure_rule(
        validation, false_flag_rate=options.false_flag_rate, prob_weight=options.prob_weight
    )
    head = head.with_unsure(rule)
    backbone_info = BackboneInfo(
        name=options.backbone,
        sha256=file_digest(model),
        input_size=options.crop.size,
        feature_dim=features.shape[-1] // len(options.crop.margins),
        crop=options.crop,
    )
    lap("validation_and_export")

    created = datetime.now(UTC)
    version = f"{created:%Y%m%d-%H%M%S}-{file_digest(model)[:8]}"
    info: dict[str, Any] = {
        "version": version,
        "label_count": len(label_names),
        "labels": label_names,
        "created_at": created.isoformat(timespec="seconds"),
        "backbone": backbone_info.to_dict(),
        "crop": options.crop.to_dict(),
        "detectors": "cascade+animeface" if options.cascade_path else "animeface",
        "tflite": {"float16": options.float16, "bytes": len(model), "max_diff": agreement},
        "unsure": {
            "threshold": rule.threshold,
            "prob_weight": rule.prob_weight,
            "false_flag_rate": options.false_flag_rate,
        },
        "training": {
            "pictures": len(pictures),
            "skipped": len(skipped),
            "skipped_pictures": skipped,
            "faces": len(features),
            "per_label": {name: per_label[name] for name in label_names},
            "face_detectors": dict(detectors),
            "group_pictures": sum(len(item.faces.detectors) > 1 for item in gathered),
        },
        "metrics": {
            "top1": validation.accuracy,
            "folds": validation.folds,
            "repeats": validation.repeats,
            "per_label": {label_names[i]: row for i, row in validation.per_label().items()},
            "confusion": validation.confusion.tolist(),
        },
    }
    extra = {
        "confusion.png": confusion_png(validation.confusion, label_names),
        "report.md": markdown_report(info).encode("utf-8"),
        FACES_FILE: faces_manifest(gathered, chosen, options.data),
    }
    progress.report("writing", 0, 1)
    write_bundle(options.out, model, head, backbone_info, info, extra)
    progress.report("writing", 1, 1)
    lap("write")
    info["timings"] = timings
    log.info("trained %s: top-1 %.3f over %d pictures", version, validation.accuracy, len(features))
    return TrainResult(options.out, info, timings)
