"""From a folder of labelled pictures to a checked model bundle.

A run finds every face, embeds it, picks the face of each picture that belongs to its folder's
character, fine-tunes the backbone's top blocks on those faces (:mod:`trainer.finetune`),
calibrates "unsure" on pictures held out of the fine-tuning and of the head, fits the head on
everything, and exports the backbone as one ``.tflite`` checked against TensorFlow.

With ``backbone_from`` it reuses an existing bundle's backbone (no TensorFlow at all): only the
head is fitted, as a server's retrain does on the operator's base backbone.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from bot.errors import BundleError, ImageError, TrainingError
from bot.vision.bundle import BackboneInfo, familiarity_dims, load_bundle, write_bundle
from bot.vision.crop import CropSettings, crop_views
from bot.vision.decode import decode_image
from bot.vision.embedder import FaceEmbedder, combine_views
from bot.vision.faces import FaceFinder, default_face_finder
from bot.vision.geometry import Box
from bot.vision.head import Head
from trainer import head as heads
from trainer import progress
from trainer.dataset import LabelledPicture, describe_skip, file_digest, scan_folder
from trainer.features import CachedFaces, EmbeddingCache, fingerprint
from trainer.finetune import (
    FineTuneOptions,
    SplitBackbone,
    augmented_view,
    copies_per_face,
    fine_tune,
    jittered_views,
)
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
    fine_tune: FineTuneOptions | None = field(default_factory=FineTuneOptions)
    """None keeps the ImageNet backbone as it is."""
    backbone_from: Path | None = None
    """A bundle whose backbone is reused as it is (its crop settings too); only the head is
    fitted."""
    holdout_every: int = 5
    """Every this-many-th picture of a character (with at least three) is held out of the
    fine-tuning and of the head that calibrates "unsure"."""
    jitters: int = 2
    """Reframed copies of each held-out face, so the unsure threshold is set on faces that do
    not look exactly like training crops (as a post's faces don't)."""
    folds: int = 10
    repeats: int = 3
    """Cross-validation, used instead of the hold-out only when no character has three
    pictures."""
    regularisation: float = 100.0
    false_flag_rate: float = 0.16
    prob_weight: float = 0.5
    precision: str = "int8"
    """How the exported backbone computes (:data:`bot.vision.bundle.PRECISIONS`)."""
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


class Encoder(Protocol):
    """Turns face views into what the cache keeps, and that into face features."""

    name: str
    crop: CropSettings

    def encode(self, views: np.ndarray, *, mirrored: bool = True) -> np.ndarray:
        """``N×V×S×S×3`` uint8 → ``N×2×V×…`` (as seen, mirrored), what the cache keeps;
        ``N×1×V×…`` (as seen only) when not ``mirrored``."""
        ...

    def features(self, encoded: np.ndarray) -> np.ndarray:
        """What :meth:`encode` gave → ``N×2×(V·F)`` face features (``N×1×…`` if unmirrored)."""
        ...


class SplitEncoder:
    """Caches the frozen stem's activations, so features can be recomputed after fine-tuning."""

    def __init__(self, backbone: SplitBackbone, name: str, crop: CropSettings) -> None:
        self.backbone = backbone
        self.name = f"{name}/stem{backbone.options.first_block - 1}"
        self.crop = crop

    def encode(self, views: np.ndarray, *, mirrored: bool = True) -> np.ndarray:
        n, v = views.shape[:2]
        flat = views.reshape(n * v, *views.shape[2:])
        both = np.concatenate([flat, flat[:, :, ::-1]]) if mirrored else flat
        acts = self.backbone.stem_activations(both)
        return acts.reshape(-1, n, v, *acts.shape[1:]).swapaxes(0, 1)

    def features(self, encoded: np.ndarray) -> np.ndarray:
        n, flips, v = encoded.shape[:3]
        flat = encoded.reshape(n * flips * v, *encoded.shape[3:])
        pooled = self.backbone.features(flat).reshape(n, flips, v, -1)
        return combine_views(pooled).astype(np.float32)


class LiteEncoder:
    """A finished backbone ``.tflite`` (LiteRT, no TensorFlow): caches per-view features."""

    def __init__(self, model: bytes, info: BackboneInfo, precision: str | None = None) -> None:
        self.model = model
        self.info = info
        self.precision = precision
        self.name = f"tflite:{info.sha256}"
        self.crop = info.crop
        self._embedder = FaceEmbedder(
            model, input_size=info.input_size, feature_dim=info.feature_dim, num_threads=2
        )

    def encode(self, views: np.ndarray, *, mirrored: bool = True) -> np.ndarray:
        out = [
            [self._embedder.view_features(face)]
            + ([self._embedder.view_features(face[:, :, ::-1])] if mirrored else [])
            for face in views
        ]
        flips = 2 if mirrored else 1
        return np.asarray(out, np.float32).reshape(len(views), flips, views.shape[1], -1)

    def features(self, encoded: np.ndarray) -> np.ndarray:
        return combine_views(encoded).astype(np.float32)


@dataclass(frozen=True)
class Gathered:
    """A usable training picture: the file, its content hash and its faces."""

    picture: LabelledPicture
    digest: str
    faces: CachedFaces


def _gather_faces(
    pictures: list[LabelledPicture],
    options: TrainOptions,
    finder: FaceFinder,
    encoder: Encoder,
    cache: EmbeddingCache,
) -> tuple[list[Gathered], list[str], list[np.ndarray]]:
    """Every picture's faces (boxes, detectors, encoded views): cached ones loaded, the rest
    detected and encoded in batches. Also returns a few faces' views for the export check."""
    found: dict[int, Gathered] = {}
    pending: list[tuple[int, str, np.ndarray, tuple[str, ...], np.ndarray]] = []
    skipped: list[str] = []
    samples: list[np.ndarray] = []
    encoded_faces = 0
    cached = 0

    def flush() -> None:
        nonlocal encoded_faces
        if not pending:
            return
        views = np.concatenate([item[2] for item in pending])
        encoded = encoder.encode(views)
        start = 0
        for index, digest, face_views, detectors, boxes in pending:
            faces = CachedFaces(encoded[start : start + len(face_views)], detectors, boxes)
            start += len(face_views)
            cache.put(digest, faces)
            found[index] = Gathered(pictures[index], digest, faces)
        encoded_faces += len(views)
        progress.report("embedding", len(found), len(pictures))
        pending.clear()

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
            cached += 1
            continue
        try:
            decoded = decode_image(data)
        except ImageError as exc:
            skipped.append(describe_skip(picture, exc))
            continue
        faces = finder.find(decoded.pixels)
        if not faces:
            skipped.append(f"{picture.path.parent.name}/{picture.path.name}: no face found")
            continue
        views = np.stack([crop_views(decoded.pixels, face.box, encoder.crop) for face in faces])
        # Boxes are kept in the original picture's pixels (faces.json reports them).
        original = [face.box.scaled(1.0 / decoded.scale).as_list() for face in faces]
        boxes = np.array(original, np.int64).reshape(-1, 4)
        pending.append((index, digest, views, tuple(face.detector for face in faces), boxes))
        if len(samples) < 3:
            samples.append(views[0])
        if sum(len(item[2]) for item in pending) >= 64:
            flush()
    flush()
    log.info(
        "%d pictures with faces: %d from the cache, %d faces found and encoded in the others",
        len(found),
        cached,
        encoded_faces,
    )
    return [found[i] for i in sorted(found)], skipped, samples


def _features_of(encoder: Encoder, gathered: list[Gathered]) -> list[np.ndarray]:
    """Every picture's faces' features (``faces×2×D`` each), computed in one batch (per
    picture, the many small calls cost more than the work)."""
    counts = [len(item.faces.detectors) for item in gathered]
    features = encoder.features(np.concatenate([item.faces.features for item in gathered]))
    return np.split(features, np.cumsum(counts)[:-1])


def holdout_mask(labels: np.ndarray, every: int) -> np.ndarray:
    """Which pictures are held out: every ``every``-th of each label that has at least three
    (counting from the middle of the first stride), so each label keeps two or more to learn."""
    held = np.zeros(len(labels), bool)
    if every < 2:
        return held
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        if len(rows) >= 3:
            held[rows[every // 2 :: every]] = True
    return held


@dataclass
class _Extra:
    """What a second pass over the pictures makes: augmented copies of the chosen faces of
    pictures used for fine-tuning, reframed copies of the held-out ones (encoded as seen, not
    mirrored: what :meth:`Encoder.encode` gives with ``mirrored=False``)."""

    augmented: list[np.ndarray] = field(default_factory=list)
    augmented_labels: list[int] = field(default_factory=list)
    jittered: list[np.ndarray] = field(default_factory=list)
    jittered_labels: list[int] = field(default_factory=list)


def _jitter_key(face: int, count: int) -> str:
    return f"jitter-f{face}-n{count}"


def _second_pass(
    gathered: list[Gathered],
    chosen: list[int],
    labels: np.ndarray,
    held: np.ndarray,
    options: TrainOptions,
    encoder: Encoder,
    cache: EmbeddingCache,
    copies: int,
    *,
    make_view: Callable[[np.ndarray, Box, np.random.Generator], np.ndarray] | None,
) -> _Extra:
    """Decode the pictures again where needed and make the chosen faces' extra views.

    A held-out face's reframed copies come from a generator seeded by its picture's hash, so
    they are the same in every run and their encoding is cached like the faces' (a retrain
    after a few new pictures encodes only the new pictures' copies)."""
    rng = np.random.default_rng(0)
    extra = _Extra()
    fresh: list[tuple[str, str, np.ndarray, int]] = []
    for item, face, label, is_held in zip(gathered, chosen, labels, held, strict=True):
        key = _jitter_key(face, options.jitters)
        cached = cache.get_extra(item.digest, key) if is_held else None
        if cached is not None:
            extra.jittered.extend(cached)
            extra.jittered_labels.extend([int(label)] * len(cached))
            continue
        if not is_held and make_view is None:
            continue
        try:
            decoded = decode_image(item.picture.path.read_bytes())
        except (OSError, ImageError):
            continue  # it was read a moment ago; a picture that vanished just adds nothing
        pixels = decoded.pixels
        box = Box(*(int(v) for v in item.faces.boxes[face])).scaled(decoded.scale)
        if is_held:
            own = np.random.default_rng(int(item.digest[:16], 16))
            reframed = jittered_views(pixels, box, own, encoder.crop, options.jitters)
            if reframed:
                fresh.append((item.digest, key, np.stack(reframed), int(label)))
        elif make_view is not None:
            for _ in range(copies):
                extra.augmented.append(make_view(pixels, box, rng))
                extra.augmented_labels.append(int(label))
    if fresh:  # encoded in one batch; the rows' order does not matter, only their labels
        views = np.concatenate([stacked for _, _, stacked, _ in fresh])
        encoded = encoder.encode(views, mirrored=False)
        start = 0
        for digest, key, stacked, label in fresh:
            chunk = encoded[start : start + len(stacked)]
            start += len(stacked)
            cache.put_extra(digest, key, chunk)
            extra.jittered.extend(chunk)
            extra.jittered_labels.extend([label] * len(chunk))
    return extra


def _calibrate(
    features: np.ndarray,
    labels: np.ndarray,
    held: np.ndarray,
    jittered: np.ndarray,
    jittered_labels: np.ndarray,
    options: TrainOptions,
    gallery_dims: np.ndarray | None,
) -> tuple[heads.Validation, heads.Validation]:
    """Fit a head without the held-out pictures and answer them: the validation to report
    (held-out pictures as they are) and the one that sets "unsure" (those plus reframed
    copies). Without a hold-out, both are repeated cross-validation."""
    with threadpool_limits(limits=1):
        if not held.any():
            validation = heads.cross_validate(
                features,
                labels,
                folds=options.folds,
                repeats=options.repeats,
                c=options.regularisation,
                prob_weight=options.prob_weight,
                gallery_dims=gallery_dims,
            )
            return validation, validation
        head = heads.fit_head(
            features[~held], labels[~held], c=options.regularisation, gallery_dims=gallery_dims
        )
        rows = np.concatenate([features[held][:, 0], jittered.reshape(-1, features.shape[-1])])
        truth = np.concatenate([labels[held], jittered_labels])
        probs, familiarity = heads.score(head, rows)
    best, confidence = heads.combined_confidence(probs, familiarity, options.prob_weight)
    count = int(held.sum())
    report = heads.Validation(truth[:count], best[:count], confidence[:count], 1, 1)
    calibration = heads.Validation(truth, best, confidence, 1, 1)
    return report, calibration


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
    finder = default_face_finder(options.cascade_path)
    split: SplitBackbone | None = None
    reused: LiteEncoder | None = None
    encoder: Encoder
    if options.backbone_from is not None:
        reused = _reused_encoder(options.backbone_from)
        encoder = reused
    else:
        if options.backbone != "mobilenet_v2" and options.fine_tune is not None:
            raise TrainingError("fine-tuning needs the mobilenet_v2 backbone")
        keras_backbone = build_backbone(options.backbone, options.crop.size)
        split = SplitBackbone(
            keras_backbone, options.fine_tune or FineTuneOptions(), tuned=bool(options.fine_tune)
        )
        encoder = SplitEncoder(split, options.backbone, options.crop)
    cache = EmbeddingCache(
        options.cache_dir, fingerprint(encoder.name, encoder.crop, finder.describe())
    )
    lap("setup")

    gathered, skipped, samples = _gather_faces(pictures, options, finder, encoder, cache)
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
    candidates = _features_of(encoder, gathered)
    chosen = heads.choose_faces(candidates, labels)
    held = holdout_mask(labels, options.holdout_every)

    tuning = split is not None and split.tuned
    copies = copies_per_face(int((~held).sum()), split.options) if split is not None else 0

    def make_view(pixels: np.ndarray, box: Box, rng: np.random.Generator) -> np.ndarray:
        assert split is not None
        return augmented_view(pixels, box, rng, split.options, encoder.crop.size, encoder.crop.lift)

    extra = _second_pass(
        gathered,
        chosen,
        labels,
        held,
        options,
        encoder,
        cache,
        copies,
        make_view=make_view if tuning else None,
    )
    losses: list[float] = []
    if tuning:
        assert split is not None
        activations = split.stem_activations(np.stack(extra.augmented))
        lap("augmenting")
        losses = fine_tune(split, activations, np.array(extra.augmented_labels), len(label_names))
        del activations
        lap("fine_tuning")
        progress.report("embedding", 0, 1)
        candidates = _features_of(encoder, gathered)
        chosen = heads.choose_faces(candidates, labels)
        progress.report("embedding", 1, 1)
    features = np.stack([faces[i] for faces, i in zip(candidates, chosen, strict=True)])
    detectors = Counter(g.faces.detectors[i] for g, i in zip(gathered, chosen, strict=True))

    progress.report("validation", 0, 1)
    if extra.jittered:
        jittered = encoder.features(np.stack(extra.jittered))[:, 0]
    else:
        jittered = np.zeros((0, features.shape[-1]), np.float32)
    familiar = _familiar_features(split, reused)
    views = len(encoder.crop.margins)
    # Familiarity on the tuned features only where they were tuned on these very characters;
    # a head refitted on a reused backbone may hold characters it was never tuned on, whose
    # tuned features are far less alike (a server's newly taught character was flagged
    # "unsure" 67% of the time with them, 37% with the whole embedding).
    gallery_dims = (
        None
        if reused is not None
        else familiarity_dims(features.shape[-1] // views, views, familiar)
    )
    validation, calibration = _calibrate(
        features,
        labels,
        held,
        jittered,
        np.array(extra.jittered_labels, np.int64),
        options,
        gallery_dims,
    )
    rule = heads.choose_unsure_rule(
        calibration, false_flag_rate=options.false_flag_rate, prob_weight=options.prob_weight
    )
    with threadpool_limits(limits=1):
        head = heads.fit_head(
            features, labels, label_names, c=options.regularisation, gallery_dims=gallery_dims
        )
    head = head.with_unsure(rule)
    progress.report("validation", 1, 1)
    lap("validation")

    progress.report("export", 0, 1)
    if reused is not None:
        model, agreement, name = reused.model, 0.0, reused.info.name
        precision = reused.precision
    else:
        assert split is not None
        model, agreement, precision = _export(
            split, head, options, gathered, chosen, samples, encoder.crop
        )
        name = options.backbone if not tuning else f"{options.backbone}+tuned"
    feature_dim = features.shape[-1] // len(encoder.crop.margins)
    backbone_info = BackboneInfo(
        name=name,
        sha256=file_digest(model),
        input_size=encoder.crop.size,
        feature_dim=feature_dim,
        crop=encoder.crop,
        familiar_features=familiar,
    )
    progress.report("export", 1, 1)
    lap("export")

    created = datetime.now(UTC)
    version = f"{created:%Y%m%d-%H%M%S}-{file_digest(model)[:8]}"
    method = "held-out" if held.any() else "cross-validation"
    info: dict[str, Any] = {
        "version": version,
        "label_count": len(label_names),
        "labels": label_names,
        "created_at": created.isoformat(timespec="seconds"),
        "backbone": backbone_info.to_dict(),
        "crop": encoder.crop.to_dict(),
        "detectors": finder.describe(),
        "tflite": {
            "precision": precision,
            "bytes": len(model),
            "max_diff": agreement,
        },
        "fine_tune": _fine_tune_info(split, losses, copies, reused),
        "unsure": {
            "threshold": rule.threshold,
            "prob_weight": rule.prob_weight,
            "false_flag_rate": options.false_flag_rate,
            "calibrated_on": len(calibration.labels),
        },
        "training": {
            "pictures": len(pictures),
            "skipped": len(skipped),
            "skipped_pictures": skipped,
            "faces": len(features),
            "held_out": int(held.sum()),
            "per_label": {name: per_label[name] for name in label_names},
            "face_detectors": dict(detectors),
            "group_pictures": sum(len(item.faces.detectors) > 1 for item in gathered),
        },
        "metrics": {
            "method": method,
            "top1": validation.accuracy,
            "folds": validation.folds,
            "repeats": validation.repeats,
            "per_label": {label_names[i]: row for i, row in validation.per_label().items()},
            "confusion": validation.confusion.tolist(),
        },
    }
    extra_files = {
        "confusion.png": confusion_png(validation.confusion, label_names),
        "report.md": markdown_report(info).encode("utf-8"),
        FACES_FILE: faces_manifest(gathered, chosen, options.data),
    }
    progress.report("writing", 0, 1)
    write_bundle(options.out, model, head, backbone_info, info, extra_files)
    progress.report("writing", 1, 1)
    lap("write")
    info["timings"] = timings
    log.info("trained %s: top-1 %.3f (%s)", version, validation.accuracy, method)
    return TrainResult(options.out, info, timings)


def _familiar_features(split: SplitBackbone | None, reused: LiteEncoder | None) -> int | None:
    """How many leading features of each view are the fine-tuned ones (it gives them first):
    a fine-tuned backbone's, a reused backbone's as its bundle says, else None."""
    if reused is not None:
        return reused.info.familiar_features
    if split is not None and split.tuned and split.options.frozen_weight > 0:
        return int(split.frozen_top.output.shape[-1])
    return None


def _reused_encoder(path: Path) -> LiteEncoder:
    try:
        bundle = load_bundle(path)
        model = bundle.model_path.read_bytes()
    except (BundleError, OSError) as exc:
        raise TrainingError(f"cannot reuse the backbone of {path}: {exc}") from exc
    tflite = bundle.info.get("tflite", {})
    precision = tflite.get("precision", "float16" if tflite.get("float16") else None)
    return LiteEncoder(model, bundle.backbone, precision)


def _fine_tune_info(
    split: SplitBackbone | None, losses: list[float], copies: int, reused: LiteEncoder | None
) -> dict[str, Any]:
    if reused is not None:
        return {"reused_backbone": reused.info.sha256}
    if split is None or not split.tuned:
        return {"steps": 0}
    return {**asdict(split.options), "copies_per_face": copies, "losses": losses}


def _export(
    split: SplitBackbone,
    head: Head,
    options: TrainOptions,
    gathered: list[Gathered],
    chosen: list[int],
    samples: list[np.ndarray],
    crop: CropSettings,
) -> tuple[bytes, float, str]:
    """Convert the backbone to TFLite and check, on a few faces, that the head answers the
    same from its embeddings as from TensorFlow's. Returns the model, the largest
    difference and the precision used: an int8 model that disagrees beyond
    :data:`AGREEMENT` is replaced by a float16 one (a warning says so), so an unlucky
    calibration costs speed, never the run."""
    from trainer.export import BackboneModule, check_agreement, convert

    module = BackboneModule(split.whole(), crop.size)
    if not samples:  # everything came from the cache: re-crop a few faces for the check
        for item in gathered[:3]:
            views = _recrop(item, 0, crop)
            if views is not None:
                samples.append(views)
    checked = np.stack(samples)
    precision = options.precision
    if precision == "int8":
        calibration = _calibration_views(gathered, chosen, crop)
        if len(calibration):
            model = convert(module, precision="int8", calibration=calibration)
            try:
                return (
                    model,
                    check_agreement(model, module, head, checked, tolerance=AGREEMENT["int8"]),
                    "int8",
                )
            except TrainingError as exc:
                log.warning("%s; exporting the backbone in float16 instead", exc)
        precision = "float16"
    model = convert(module, precision=precision)
    agreement = check_agreement(model, module, head, checked, tolerance=AGREEMENT[precision])
    return model, agreement, precision


AGREEMENT = {"float32": 0.02, "float16": 0.02, "int8": 0.06}
"""How far the exported backbone's scores and familiarity may be from TensorFlow's, by
precision. int8 rounds every activation: on the dev sets' fine-tuned backbones its largest
difference was 0.036–0.055 (float16: under 0.01), and top-1 moved by −0.6 to +2 points."""

CALIBRATION_PICTURES = 48
"""Pictures whose chosen face's views set an int8 backbone's activation ranges (spread over
every character). Not tuned: each picture costs a decode and a converter pass; with 48 the
dev sets' accuracy stayed within a point of float16's."""


def _recrop(item: Gathered, face: int, crop: CropSettings) -> np.ndarray | None:
    """The views of face ``face`` of a training picture, decoded again (None when the file
    cannot be read any more: it was read a moment ago, so it only adds nothing)."""
    try:
        decoded = decode_image(item.picture.path.read_bytes())
    except (OSError, ImageError):
        return None
    box = Box(*(int(v) for v in item.faces.boxes[face])).scaled(decoded.scale)
    return crop_views(decoded.pixels, box, crop)


def _calibration_views(
    gathered: list[Gathered], chosen: list[int], crop: CropSettings
) -> np.ndarray:
    """The views (``N×S×S×3``) of the chosen faces of up to :data:`CALIBRATION_PICTURES`
    pictures, picked evenly over the (label-sorted) training pictures."""
    step = max(1, len(gathered) // CALIBRATION_PICTURES)
    views: list[np.ndarray] = []
    for item, face in list(zip(gathered, chosen, strict=True))[::step][:CALIBRATION_PICTURES]:
        face_views = _recrop(item, face, crop)
        if face_views is not None:
            views.extend(face_views)
    size = crop.size
    return np.stack(views) if views else np.zeros((0, size, size, 3), np.uint8)


FACES_FILE = "faces.json"
"""Which face of each picture the model learnt from (``python -m bot install-base`` imports
those faces as the base's examples)."""


def faces_manifest(gathered: list[Gathered], chosen: list[int], root: Path) -> bytes:
    """``faces.json``: per training picture, its path under ``root``, hash, label, and the
    index (in the face finder's order), box (``[x, y, w, h]`` in the picture's pixels) and
    detector of the face used."""
    entries = [
        {
            "file": item.picture.path.relative_to(root).as_posix(),
            "sha256": item.digest,
            "label": item.picture.label,
            "face": face,
            "box": [int(v) for v in item.faces.boxes[face]],
            "detector": item.faces.detectors[face],
        }
        for item, face in zip(gathered, chosen, strict=True)
    ]
    return json.dumps(entries, indent=1).encode("utf-8")
