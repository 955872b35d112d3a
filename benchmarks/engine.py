"""End-to-end benchmark of the recognition engine and the trainer against issue 3's targets.

    python benchmarks/engine.py --data ../shared/datasets/seed/train \
        [--cascade FILE] [--quick] [--json-out PATH]

Every figure runs the real code from picture bytes: decoding, face detection and cropping
(``bot.vision``), the pretrained backbone and the trainer's head (``trainer``), the exported
TFLite model through ``Recognizer``, and the ``python -m trainer train`` command line. See
``benchmarks/README.md`` for what each figure means and how it is measured.

The bot-side part (speed and memory) runs in a fresh subprocess of this same file
(``--bot-worker``) that imports ``bot.vision`` only, so nothing at module level here may
import TensorFlow, Keras or the trainer.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/engine.py` puts benchmarks/ first, not ROOT
    sys.path.insert(0, str(ROOT))

from benchmarks.report import (  # noqa: E402
    machine_info,
    print_machine,
    render_table,
    section,
)
from benchmarks.report import run_trainer as run_trainer_command  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "datasets" / "seed" / "train"

FOLDS = 5
CV_SEED = 1000
"""Seeds of the benchmark's own splits (the trainer's inner validation uses its own, from 0)."""
NEW_PICTURES = 5


# -- figures and targets ----------------------------------------------------------------------


@dataclass
class Figure:
    """One measured number and the target it is judged against."""

    key: str
    name: str
    value: float | None
    target: float
    at_least: bool
    unit: str
    note: str = ""

    @property
    def passed(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.target if self.at_least else self.value <= self.target

    def shown(self, number: float | None) -> str:
        if number is None:
            return "n/a"
        if self.unit == "%":
            return f"{100 * number:.1f}%"
        if self.unit == "ms":
            return f"{number:.1f} ms"
        if self.unit == "s":
            return f"{number:.1f} s"
        if self.unit == "MB":
            return f"{number:.0f} MB"
        return f"{number:g}"

    def row(self) -> tuple[str, str, str, str]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]
        target = ("≥ " if self.at_least else "≤ ") + self.shown(self.target)
        return self.name, self.shown(self.value), target, verdict

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "value": self.value,
            "target": self.target,
            "comparison": ">=" if self.at_least else "<=",
            "unit": self.unit,
            "pass": self.passed,
            "note": self.note,
        }


@dataclass
class Report:
    """Everything the run found; printed as it goes and written as JSON at the end."""

    machine: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    load: dict[str, list[float]] = field(default_factory=dict)

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        name, value, target, verdict = figure.row()
        print(f"  -> {name}: {value} (target {target}) {verdict}", flush=True)

    def note_load(self, when: str) -> None:
        self.load[when] = [round(x, 2) for x in os.getloadavg()]

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": self.machine,
            "load_average": self.load,
            "figures": [f.to_json() for f in self.figures],
            "details": self.details,
        }


def table(figures: Sequence[Figure]) -> str:
    return render_table([f.row() for f in figures])


# -- the pictures, their faces and features ----------------------------------------------------


@dataclass
class Picture:
    """One labelled picture: its faces' features (most prominent first) and detectors."""

    path: Path
    label: str
    folder: str
    detectors: tuple[str, ...]
    features: np.ndarray
    """``faces×2×F``: as trainer.features.Embedder computes it."""
    digest: str

    @property
    def name(self) -> str:
        return f"{self.folder}/{self.path.name}"


def gather_pictures(data: Path, cascade: Path | None, crop: Any, backbone: str) -> list[Picture]:
    """Detect and crop every picture with the real code, then embed every face once.

    Detection, cropping and backbone features do not depend on any label, so they are shared
    by all folds; what depends on labels (face choice in group pictures, the head, the
    threshold) is redone per fold from the training part only.
    """
    from bot.errors import ImageError
    from bot.vision.faces import default_face_finder
    from trainer.dataset import file_digest, find_faces, scan_folder
    from trainer.features import Embedder
    from trainer.train import build_backbone

    finder = default_face_finder(cascade)
    found = []
    started = time.perf_counter()
    for labelled in scan_folder(data):
        try:
            data_bytes = labelled.path.read_bytes()
            views, detectors = find_faces(data_bytes, finder, crop)
        except (ImageError, OSError) as exc:
            print(f"  skipped {labelled.path}: {exc}")
            continue
        if len(views) == 0:
            print(f"  skipped {labelled.path}: no face at all (no whole-picture stand-in?)")
            continue
        found.append((labelled, file_digest(data_bytes), views, detectors))
    detect_s = time.perf_counter() - started
    started = time.perf_counter()
    embedder = Embedder(build_backbone(backbone, crop.size), backbone, crop)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    features = embedder.embed(np.concatenate([views for _, _, views, _ in found]))
    embed_s = time.perf_counter() - started
    faces = sum(len(v) for _, _, v, _ in found)
    print(
        f"  {len(found)} pictures ({len({d for _, d, _, _ in found})} distinct files), "
        f"{faces} faces: detection+crops {detect_s:.1f} s, "
        f"backbone build {build_s:.1f} s, embedding {embed_s:.1f} s"
    )
    pictures, start = [], 0
    for labelled, digest, views, detectors in found:
        pictures.append(
            Picture(
                path=labelled.path,
                label=labelled.label,
                folder=labelled.path.parent.name,
                detectors=detectors,
                features=features[start : start + len(views)],
                digest=digest,
            )
        )
        start += len(views)
    return pictures


# -- the trainer's head, as train() uses it ----------------------------------------------------


@dataclass
class Fitted:
    head: Any
    threshold: float | None


def fit_like_trainer(
    pictures: Sequence[Picture], labels: np.ndarray, options: Any, *, with_rule: bool
) -> Fitted:
    """What ``trainer.train.train`` does with the gathered faces of its training pictures.

    Faces of group pictures are chosen with ``choose_faces`` over these pictures only; the
    unsure threshold (when asked) comes from the trainer's cross-validation of these only.
    """
    from trainer import head as heads

    chosen = heads.choose_faces([p.features for p in pictures], labels)
    x = np.stack([p.features[i] for p, i in zip(pictures, chosen, strict=True)])
    head = heads.fit_head(x, labels, c=options.regularisation)
    threshold = None
    if with_rule:
        validation = heads.cross_validate(
            x,
            labels,
            folds=options.folds,
            repeats=options.repeats,
            c=options.regularisation,
            prob_weight=options.prob_weight,
        )
        rule = heads.choose_unsure_rule(
            validation, false_flag_rate=options.false_flag_rate, prob_weight=options.prob_weight
        )
        threshold = rule.threshold
    return Fitted(head, threshold)


def answer_first_faces(
    fitted: Fitted, pictures: Sequence[Picture], options: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted label ids, their scores and the unsure flags for each picture's first face.

    The first face is the most prominent one, the one the bot answers first: it is chosen
    without the picture's label.
    """
    from trainer import head as heads

    first = np.stack([p.features[0] for p in pictures])
    probs, familiarity = heads.score(fitted.head, first)
    best, confidence = heads.combined_confidence(probs, familiarity, options.prob_weight)
    scores = probs[np.arange(len(best)), best]
    unsure = (
        np.zeros(len(best), bool) if fitted.threshold is None else confidence < fitted.threshold
    )
    return best, scores, unsure


def splits(
    pictures: Sequence[Picture], labels: np.ndarray, repeats: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold over pictures, ``repeats`` times; identical files share a fold.

    (The seed folder holds one picture twice under two names: split apart, the copy in the
    training part would answer for the one in the test part.)
    """
    from sklearn.model_selection import StratifiedGroupKFold

    smallest = int(np.bincount(labels).min())
    folds = max(2, min(FOLDS, smallest))
    _, groups = np.unique([p.digest for p in pictures], return_inverse=True)
    out = []
    for repeat in range(repeats):
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed + repeat)
        out.extend(splitter.split(np.zeros(len(labels)), labels, groups))
    return out


# -- 1. recognition ----------------------------------------------------------------------------


def bench_recognition(
    report: Report, pictures: list[Picture], names: list[str], options: Any, repeats: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Repeated stratified 5-fold CV over whole pictures; returns fold 0 of repeat 0's split
    and the fast path's predictions for its test pictures."""
    labels = np.array([names.index(p.label) for p in pictures])
    wrong: Counter[str] = Counter()
    per_repeat, right_all = [], []
    confusion = np.zeros((len(names), len(names)), np.int64)
    fold_split, folds = None, splits(pictures, labels, repeats, CV_SEED)
    per_repeat_folds = len(folds) // repeats
    for n, (train, test) in enumerate(folds):
        fitted = fit_like_trainer(
            [pictures[i] for i in train], labels[train], options, with_rule=False
        )
        best, _, _ = answer_first_faces(fitted, [pictures[i] for i in test], options)
        right = best == labels[test]
        right_all.append(right)
        np.add.at(confusion, (labels[test], best), 1)
        for i, ok in zip(test, right, strict=True):
            if not ok:
                wrong[pictures[i].name] += 1
        if n % per_repeat_folds == per_repeat_folds - 1:
            per_repeat.append(float(np.concatenate(right_all[-per_repeat_folds:]).mean()))
        if n == 0:
            fold_split = (train, test, best)
    accuracy = float(np.concatenate(right_all).mean())
    print(
        f"  {repeats}×{per_repeat_folds}-fold, {len(pictures)} pictures: per repeat "
        + ", ".join(f"{100 * a:.1f}%" for a in per_repeat)
    )
    per_label = {
        name: round(float(confusion[i, i] / max(1, confusion[i].sum())), 4)
        for i, name in enumerate(names)
    }
    print(
        "  recall per character: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in per_label.items())
    )
    if wrong:
        print(
            f"  wrong (times, out of {repeats}): "
            + ", ".join(f"{k} ×{v}" for k, v in sorted(wrong.items()))
        )
    report.details["recognition"] = {
        "repeats": repeats,
        "folds": per_repeat_folds,
        "top1": accuracy,
        "per_repeat": per_repeat,
        "recall_per_label": per_label,
        "confusion": {"labels": names, "matrix": confusion.tolist()},
        "wrong": dict(wrong),
    }
    report.add(
        Figure(
            "recognition_top1",
            f"Recognition top-1, {repeats}×{per_repeat_folds}-fold CV, end to end",
            accuracy,
            0.97,
            True,
            "%",
        )
    )
    assert fold_split is not None
    return fold_split


def bench_tflite_fold(
    report: Report,
    pictures: list[Picture],
    names: list[str],
    fold: tuple[np.ndarray, np.ndarray, np.ndarray],
    cascade: Path | None,
    options: Any,
    workdir: Path,
) -> None:
    """Train a real bundle on fold 0's training pictures and recognise its test pictures."""
    from bot.vision.bundle import load_bundle
    from bot.vision.faces import default_face_finder
    from bot.vision.recognizer import Recognizer
    from trainer.train import TrainOptions, train

    train_idx, test_idx, fast_best = fold
    data = workdir / "fold0-data"
    for i in train_idx:
        picture = pictures[i]
        (data / picture.folder).mkdir(parents=True, exist_ok=True)
        (data / picture.folder / picture.path.name).symlink_to(picture.path.resolve())
    started = time.perf_counter()
    result = train(
        TrainOptions(
            data=data,
            out=workdir / "fold0-bundle",
            cache_dir=None,
            cascade_path=cascade,
            backbone=options.backbone,
            crop=options.crop,
            progress=False,
        )
    )
    train_s = time.perf_counter() - started
    bundle = load_bundle(result.bundle)
    if list(bundle.labels) != names:
        raise SystemExit(f"the fold bundle's labels {bundle.labels} differ from {names}")
    recognizer = Recognizer(bundle, default_face_finder(cascade))
    agree = right_tflite = right_fast = unsure_tflite = 0
    disagreements = []
    for i, fast in zip(test_idx, fast_best, strict=True):
        picture = pictures[i]
        recognition = recognizer.recognize_bytes(picture.path.read_bytes())
        first = recognition.faces[0]
        label = first.prediction.best.label
        right_tflite += label == picture.label
        right_fast += names[fast] == picture.label
        unsure_tflite += first.prediction.unsure
        if label == names[fast]:
            agree += 1
        else:
            disagreements.append(f"{picture.name}: tflite {label}, fast {names[fast]}")
    n = len(test_idx)
    print(
        f"  trained a bundle on {len(train_idx)} pictures in {train_s:.1f} s "
        f"(trainer's own CV top-1 {result.info['metrics']['top1']:.3f}); {n} held out"
    )
    print(
        f"  held-out top-1: TFLite via Recognizer {right_tflite}/{n} "
        f"= {100 * right_tflite / n:.1f}%, fast path {right_fast}/{n} "
        f"= {100 * right_fast / n:.1f}%; "
        f"same answer on {agree}/{n}; TFLite unsure flags {unsure_tflite}/{n}"
    )
    for line in disagreements:
        print(f"    differs: {line}")
    report.details["tflite_fold"] = {
        "train_pictures": len(train_idx),
        "test_pictures": n,
        "train_seconds": round(train_s, 1),
        "tflite_top1": right_tflite / n,
        "fast_path_top1": right_fast / n,
        "same_answer": agree / n,
        "tflite_unsure": unsure_tflite / n,
        "disagreements": disagreements,
    }
    report.add(
        Figure(
            "tflite_fast_agreement",
            "Check: fold 0, TFLite bundle and fast path give the same answer",
            agree / n,
            0.95,
            True,
            "%",
            note=f"TFLite top-1 {right_tflite}/{n}, fast path {right_fast}/{n}",
        )
    )


# -- 2. faces ----------------------------------------------------------------------------------


def bench_faces(report: Report, pictures: list[Picture]) -> None:
    first = Counter(p.detectors[0] for p in pictures)
    every = Counter(d for p in pictures for d in p.detectors)
    found = [p for p in pictures if p.detectors[0] != "none"]
    missed = [p.name for p in pictures if p.detectors[0] == "none"]
    groups = [f"{p.name} ({len(p.detectors)})" for p in pictures if len(p.detectors) > 1]
    print("  first face found by: " + ", ".join(f"{k} {v}" for k, v in first.most_common()))
    print("  all faces found by: " + ", ".join(f"{k} {v}" for k, v in every.most_common()))
    print(
        f"  pictures with several faces: {len(groups)}"
        + (f" ({', '.join(groups)})" if groups else "")
    )
    if missed:
        print("  no detector answered (whole picture, detector none): " + ", ".join(missed))
    report.details["faces"] = {
        "pictures": len(pictures),
        "found": len(found),
        "first_face_detectors": dict(first),
        "all_face_detectors": dict(every),
        "several_faces": groups,
        "no_face": missed,
    }
    report.add(
        Figure(
            "faces_found",
            f"Faces: a real detector found a face ({len(found)}/{len(pictures)})",
            len(found) / len(pictures),
            0.97,
            True,
            "%",
        )
    )


# -- 3. unknown characters ---------------------------------------------------------------------


def bench_unknown(
    report: Report,
    pictures: list[Picture],
    names: list[str],
    options: Any,
    outer_repeats: int,
) -> None:
    labels = np.array([names.index(p.label) for p in pictures])
    rows: list[dict[str, Any]] = []
    total_out = total_flagged = total_right = total_right_flagged = 0
    total_wrong = total_wrong_flagged = 0
    for left in range(len(names)):
        taught = np.flatnonzero(labels != left)
        unseen = np.flatnonzero(labels == left)
        _, y = np.unique(labels[taught], return_inverse=True)
        taught_pics = [pictures[i] for i in taught]
        # The model the trainer would ship without this character.
        fitted = fit_like_trainer(taught_pics, y, options, with_rule=True)
        _, _, unsure = answer_first_faces(fitted, [pictures[i] for i in unseen], options)
        flagged = int(unsure.sum())
        # Nested CV on the taught characters: a fresh fit and threshold per outer fold.
        right = right_flagged = wrong = wrong_flagged = 0
        for train, test in splits(taught_pics, y, outer_repeats, CV_SEED + 100):
            inner = fit_like_trainer(
                [taught_pics[i] for i in train], y[train], options, with_rule=True
            )
            best, _, unsure_t = answer_first_faces(inner, [taught_pics[i] for i in test], options)
            ok = best == y[test]
            right += int(ok.sum())
            right_flagged += int((ok & unsure_t).sum())
            wrong += int((~ok).sum())
            wrong_flagged += int((~ok & unsure_t).sum())
        row: dict[str, Any] = {
            "left_out": names[left],
            "left_out_pictures": len(unseen),
            "left_out_flagged": flagged,
            "threshold": fitted.threshold,
            "taught_right": right,
            "taught_right_flagged": right_flagged,
            "taught_wrong": wrong,
            "taught_wrong_flagged": wrong_flagged,
        }
        rows.append(row)
        print(
            f"  without {names[left]!r}: {flagged}/{len(unseen)} of its pictures unsure "
            f"({100 * flagged / len(unseen):.1f}%); taught pictures' right answers flagged "
            f"{right_flagged}/{right} ({100 * right_flagged / max(1, right):.1f}%), wrong answers "
            f"flagged {wrong_flagged}/{wrong}; threshold {fitted.threshold:.4f}"
        )
        total_out += len(unseen)
        total_flagged += flagged
        total_right += right
        total_right_flagged += right_flagged
        total_wrong += wrong
        total_wrong_flagged += wrong_flagged
    report.details["unknown"] = {
        "outer_repeats": outer_repeats,
        "false_flag_rate": options.false_flag_rate,
        "per_left_out": rows,
        "left_out_flagged": total_flagged / total_out,
        "taught_right_flagged": total_right_flagged / max(1, total_right),
        "taught_wrong_flagged": total_wrong_flagged / max(1, total_wrong),
    }
    for row in rows:
        report.add(
            Figure(
                f"unknown_flagged_{row['left_out'].replace(' ', '_')}",
                f"Unknown: {row['left_out']} left out, its pictures unsure",
                row["left_out_flagged"] / row["left_out_pictures"],
                0.70,
                True,
                "%",
            )
        )
    report.add(
        Figure(
            "unknown_flagged",
            f"Unknown: left-out characters' pictures unsure, overall ({total_flagged}/{total_out})",
            total_flagged / total_out,
            0.70,
            True,
            "%",
        )
    )
    for row in rows:
        report.add(
            Figure(
                f"taught_right_flagged_{row['left_out'].replace(' ', '_')}",
                f"Unknown: {row['left_out']} left out, right taught answers unsure",
                row["taught_right_flagged"] / max(1, row["taught_right"]),
                0.20,
                False,
                "%",
            )
        )
    report.add(
        Figure(
            "taught_right_flagged",
            "Unknown: right answers on taught characters unsure, overall "
            f"({total_right_flagged}/{total_right})",
            total_right_flagged / max(1, total_right),
            0.20,
            False,
            "%",
        )
    )


# -- 5. training -------------------------------------------------------------------------------


def run_trainer(
    data: Path,
    out: Path,
    cache: Path,
    cascade: Path | None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    args = ["--data", str(data), "--out", str(out), "--cache", str(cache), "--quiet"]
    if cascade is not None:
        args += ["--cascade", str(cascade)]
    wall, stdout = run_trainer_command(args, extra_env)
    timings = ""
    summary = ""
    for line in stdout.splitlines():
        if line.startswith("timings:"):
            timings = line.removeprefix("timings:").strip()
        elif line.startswith("wrote "):
            summary = line
    cached = sum(1 for _ in cache.rglob("*.npz"))
    return {"seconds": wall, "timings": timings, "summary": summary, "cache_entries": cached}


def make_new_pictures(pictures: list[Picture], dest: Path, offset: int = 0) -> list[str]:
    """``NEW_PICTURES`` mirrored, re-encoded copies of existing pictures, spread over folders."""
    from PIL import Image

    from bot.vision.decode import DecodeLimits, decode_image

    step = max(1, len(pictures) // NEW_PICTURES)
    made = []
    for picture in pictures[offset % step :: step][:NEW_PICTURES]:
        pixels = decode_image(picture.path.read_bytes(), DecodeLimits(target_side=None)).pixels
        target = dest / picture.folder / f"bench-mirrored-{offset}-{picture.path.stem}.jpg"
        Image.fromarray(np.ascontiguousarray(pixels[:, ::-1])).save(target, "JPEG", quality=90)
        made.append(f"{picture.folder}/{target.name}")
    return made


def link_copy(data: Path, dest: Path) -> Path:
    """``dest`` with the character folders of ``data``, each picture a symbolic link."""
    for source in sorted(p for p in data.iterdir() if p.is_dir()):
        (dest / source.name).mkdir(parents=True)
        for path in sorted(source.iterdir()):
            (dest / source.name / path.name).symlink_to(path.resolve())
    return dest


def bench_training(
    report: Report, data: Path, pictures: list[Picture], cascade: Path | None, workdir: Path
) -> Path:
    cache = workdir / "train-cache"
    bundle = workdir / "bundle-all"
    first = run_trainer(data, bundle, cache, cascade)
    print(f"  from raw pictures, empty cache: {first['seconds']:.1f} s wall ({first['timings']})")
    print(f"  {first['summary']}")
    grown = link_copy(data, workdir / "data-plus-5")
    made = make_new_pictures(pictures, grown)
    second = run_trainer(grown, workdir / "bundle-plus-5", cache, cascade)
    print(
        f"  with {len(made)} new pictures ({', '.join(made)}), cache kept: "
        f"{second['seconds']:.1f} s wall ({second['timings']})"
    )
    print(
        f"  {second['summary']}; cache entries "
        f"{first['cache_entries']} -> {second['cache_entries']}"
    )
    # A diagnostic, not a figure: the same retrain (5 other new pictures) with OpenBLAS held
    # to one thread, to show how much of the time is BLAS threads fighting for two cores.
    other = link_copy(data, workdir / "data-plus-5-other")
    made_other = make_new_pictures(pictures, other, offset=NEW_PICTURES // 2 + 1)
    third = run_trainer(
        other, workdir / "bundle-plus-5-other", cache, cascade, {"OPENBLAS_NUM_THREADS": "1"}
    )
    print(
        f"  diagnostic: the same with 5 other new pictures and OPENBLAS_NUM_THREADS=1: "
        f"{third['seconds']:.1f} s wall ({third['timings']})"
    )
    report.details["training"] = {
        "from_raw": first,
        "retrain_plus_5": second,
        "new_pictures": made,
        "diagnostic_retrain_plus_5_openblas_1_thread": third,
        "diagnostic_new_pictures": made_other,
    }
    report.add(
        Figure(
            "train_from_raw",
            f"Training from raw pictures, empty cache ({len(pictures)} pictures)",
            first["seconds"],
            90.0,
            False,
            "s",
        )
    )
    report.add(
        Figure(
            "retrain_plus_5",
            "Retraining with 5 new pictures, cache kept",
            second["seconds"],
            15.0,
            False,
            "s",
        )
    )
    return bundle


# -- 4 and 6. the bot side: speed and memory (a fresh process without TensorFlow) ----------------

# The worker is started through this tiny launcher. Linux keeps a process's peak RSS
# (ru_maxrss) across exec, and a child started straight from this process (TensorFlow loaded,
# over a gigabyte) would report this process's peak, not its own.
_LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"


def _status_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bot_worker(args: argparse.Namespace) -> int:
    """Run in a fresh process: import ``bot.vision`` only, recognise every picture, report."""
    import_started = time.perf_counter()
    from bot.vision.bundle import load_bundle
    from bot.vision.crop import crop_views
    from bot.vision.decode import decode_image
    from bot.vision.faces import default_face_finder
    from bot.vision.recognizer import Recognizer

    import_s = time.perf_counter() - import_started
    rss_imported = _status_mb("VmRSS")
    files = sorted(p for p in args.data.glob("*/*") if p.is_file())
    blobs = [(f"{p.parent.name}/{p.name}", p.read_bytes()) for p in files]
    load_started = time.perf_counter()
    recognizer = Recognizer(load_bundle(args.model), default_face_finder(args.cascade))
    load_s = time.perf_counter() - load_started
    rss_loaded = _status_mb("VmRSS")

    cold_started = time.perf_counter()
    recognizer.recognize_bytes(blobs[0][1])
    cold_ms = 1000 * (time.perf_counter() - cold_started)
    for _, data in blobs:  # warm-up pass
        recognizer.recognize_bytes(data)

    wall: dict[str, list[float]] = {name: [] for name, _ in blobs}
    cpu: list[float] = []
    faces: dict[str, int] = {}
    for _ in range(args.passes):
        for name, data in blobs:
            started, cpu_started = time.perf_counter(), time.process_time()
            recognition = recognizer.recognize_bytes(data)
            wall[name].append(1000 * (time.perf_counter() - started))
            cpu.append(1000 * (time.process_time() - cpu_started))
            faces[name] = len(recognition.faces)

    # The same stages with the same functions, timed one by one.
    stages: dict[str, dict[str, list[float]]] = {name: {} for name, _ in blobs}
    per_face: list[float] = []
    for _ in range(args.passes):
        for name, data in blobs:
            t0 = time.perf_counter()
            decoded = decode_image(data, recognizer.limits)
            t1 = time.perf_counter()
            found = recognizer.finder.find(decoded.pixels)[: recognizer.max_faces]
            t2 = time.perf_counter()
            for face in found:
                f0 = time.perf_counter()
                recognizer.classifier.classify(
                    crop_views(decoded.pixels, face.box, recognizer.bundle.crop)
                )
                per_face.append(1000 * (time.perf_counter() - f0))
            t3 = time.perf_counter()
            for stage, ms in (("decode", t1 - t0), ("detect", t2 - t1), ("classify", t3 - t2)):
                stages[name].setdefault(stage, []).append(1000 * ms)

    def median_of(stage: str) -> float:
        return statistics.median(t for s in stages.values() for t in s[stage])

    every = [t for values in wall.values() for t in values]
    slowest = sorted(((max(v), k) for k, v in wall.items()), reverse=True)[:5]
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "trainer"))
    result = {
        "pictures": len(blobs),
        "passes": args.passes,
        "median_ms": statistics.median(every),
        "p90_ms": float(np.percentile(every, 90)),
        "max_ms": max(every),
        "cpu_median_ms": statistics.median(cpu),
        "cold_first_ms": cold_ms,
        "slowest": [
            {
                "picture": k,
                "max_ms": round(v, 1),
                "faces": faces[k],
                **{f"{s}_ms": round(statistics.median(t), 1) for s, t in stages[k].items()},
            }
            for v, k in slowest
        ],
        "decode_median_ms": median_of("decode"),
        "detect_median_ms": median_of("detect"),
        "classify_median_ms": median_of("classify"),
        "classify_per_face_median_ms": statistics.median(per_face),
        "per_picture_median_ms": {k: round(statistics.median(v), 1) for k, v in wall.items()},
        "per_picture_max_ms": {k: round(max(v), 1) for k, v in wall.items()},
        "faces_per_picture": faces,
        "import_seconds": import_s,
        "bundle_load_seconds": load_s,
        "rss_after_import_mb": rss_imported,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "vm_hwm_mb": _status_mb("VmHWM"),
        "heavy_modules": heavy,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))
    return 0


def bench_bot_side(
    report: Report, data: Path, bundle: Path, cascade: Path | None, passes: int
) -> None:
    worker = [str(Path(__file__).resolve()), "--bot-worker", "--data", str(data)]
    worker += ["--model", str(bundle), "--passes", str(passes)]
    if cascade is not None:
        worker += ["--cascade", str(cascade)]
    command = [sys.executable, "-c", _LAUNCHER, sys.executable, *worker]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(proc.stdout[-3000:])
        print(proc.stderr[-3000:])
        raise SystemExit(f"the bot-side worker failed with exit code {proc.returncode}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    report.details["bot_side"] = result
    print(
        f"  {result['pictures']} pictures × {passes} pass(es) after a warm-up pass: median "
        f"{result['median_ms']:.1f} ms (CPU time {result['cpu_median_ms']:.1f} ms), 90th "
        f"percentile {result['p90_ms']:.1f} ms, max {result['max_ms']:.1f} ms; first call in "
        f"the process {result['cold_first_ms']:.0f} ms"
    )
    print(
        f"  stage medians: decode {result['decode_median_ms']:.1f} ms, detect "
        f"{result['detect_median_ms']:.1f} ms, classify {result['classify_median_ms']:.1f} ms "
        f"({result['classify_per_face_median_ms']:.1f} ms per face, crops included)"
    )
    for s in result["slowest"]:
        print(
            f"  slow: {s['picture']} {s['max_ms']} ms, {s['faces']} face(s); stage medians "
            f"decode {s['decode_ms']}, detect {s['detect_ms']}, classify {s['classify_ms']} ms"
        )
    print(
        f"  imports {result['import_seconds']:.2f} s, "
        f"bundle load {result['bundle_load_seconds']:.2f} s; "
        f"RSS after import {result['rss_after_import_mb']:.0f} MB, after load "
        f"{result['rss_after_load_mb']:.0f} MB, peak (ru_maxrss) {result['peak_rss_mb']:.0f} MB, "
        f"VmHWM {result['vm_hwm_mb']:.0f} MB; "
        f"TensorFlow/Keras/trainer modules loaded: {result['heavy_modules'] or 'none'}"
    )
    report.add(
        Figure(
            "speed_median",
            "Speed: median end-to-end time per picture",
            result["median_ms"],
            60.0,
            False,
            "ms",
            note=f"CPU time median {result['cpu_median_ms']:.1f} ms",
        )
    )
    by_median = max(result["per_picture_median_ms"].items(), key=lambda item: item[1])
    print(
        f"  slowest picture by its median over the passes (less sensitive to other processes): "
        f"{by_median[0]} {by_median[1]:.1f} ms"
    )
    report.add(
        Figure(
            "speed_max",
            "Speed: slowest picture",
            result["max_ms"],
            300.0,
            False,
            "ms",
            note=f"slowest by median over passes: {by_median[0]} {by_median[1]:.1f} ms",
        )
    )
    peak = result["peak_rss_mb"]
    if result["heavy_modules"]:
        peak = None  # not a bot-side measurement
        print("  FAIL: the bot side imported " + ", ".join(result["heavy_modules"]))
    report.add(
        Figure(
            "bot_peak_rss",
            "Bot-side memory: peak RSS, bot.vision only",
            peak,
            400.0,
            False,
            "MB",
            note="TensorFlow imported" if result["heavy_modules"] else "",
        )
    )


# -- main --------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="one folder per character")
    parser.add_argument(
        "--cascade",
        type=Path,
        default=None,
        help="an LBP cascade file (default: $CASCADE_PATH, else the installed one)",
    )
    parser.add_argument("--quick", action="store_true", help="1 CV repeat and 1 timed pass")
    parser.add_argument(
        "--model", type=Path, default=None, help="a bundle for the speed and memory figures"
    )
    parser.add_argument("--json-out", type=Path, default=None, help="also write the results here")
    parser.add_argument("--workdir", type=Path, default=None, help="keep temporary files here")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a figure fails")
    parser.add_argument("--bot-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--passes", type=int, default=3, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.bot_worker:
        return bot_worker(args)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import logging

    logging.basicConfig(level=logging.WARNING)
    data = args.data.resolve()
    from bot.vision.cascade import resolve_cascade

    cascade = resolve_cascade(args.cascade).resolve()
    repeats = 1 if args.quick else 3
    passes = 1 if args.quick else 3
    started = time.perf_counter()

    info = machine_info()
    report = Report(info)
    report.note_load("start")
    print(f"benchmarks/engine.py{' --quick' if args.quick else ''}: {data}")
    print(f"cascade: {cascade or 'none (animeface only)'}")
    print_machine(info)

    from trainer.train import TrainOptions

    options = TrainOptions(data=data, out=Path("unused"))  # the trainer's defaults
    report.details["settings"] = {
        "data": str(data),
        "cascade": str(cascade) if cascade else None,
        "quick": args.quick,
        "crop": options.crop.to_dict(),
        "backbone": options.backbone,
        "regularisation": options.regularisation,
        "false_flag_rate": options.false_flag_rate,
        "prob_weight": options.prob_weight,
    }

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="engine-bench-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    steps: dict[str, float] = {}

    def timed(name: str, step: Callable[[], Any]) -> Any:
        section(name)
        report.note_load(name)
        begun = time.perf_counter()
        value = step()
        steps[name] = round(time.perf_counter() - begun, 1)
        print(f"  ({steps[name]:.1f} s)")
        return value

    # The head's fits are small matrix work that OpenBLAS spreads over every core; with the
    # other core busy its threads wait on each other and a fit takes 50× longer. This process
    # times none of it (the trainer's own timing is measured in a subprocess, untouched).
    from threadpoolctl import threadpool_limits

    try:
        with threadpool_limits(limits=1, user_api="blas"):
            pictures = timed(
                "Detecting, cropping and embedding every picture once",
                lambda: gather_pictures(data, cascade, options.crop, options.backbone),
            )
            names = sorted({p.label for p in pictures})
            timed("2. Faces", lambda: bench_faces(report, pictures))
            fold = timed(
                "1. Recognition (fast path: backbone features once per crop, head per fold)",
                lambda: bench_recognition(report, pictures, names, options, repeats),
            )
            timed(
                "1b. Recognition through the exported TFLite bundle, fold 0 of repeat 0",
                lambda: bench_tflite_fold(report, pictures, names, fold, cascade, options, workdir),
            )
            timed(
                "3. Unknown characters (leave one character out; nested CV for false flags)",
                lambda: bench_unknown(report, pictures, names, options, repeats),
            )
            bundle = timed(
                "5. Training (python -m trainer train, a subprocess)",
                lambda: bench_training(report, data, pictures, cascade, workdir),
            )
            if args.model is not None:
                bundle = args.model.resolve()
            timed(
                f"4 and 6. Bot side: speed and memory (fresh process, bundle {bundle.name})",
                lambda: bench_bot_side(report, data, bundle, cascade, passes),
            )
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    report.note_load("end")
    report.details["step_seconds"] = steps
    report.details["total_seconds"] = round(time.perf_counter() - started, 1)
    print("\n== Summary ==")
    print(table(report.figures))
    load = report.load
    print(
        f"\nmachine: {info['cpu']}, {info['cores']} cores, Python {info['python']}; "
        f"load average at start {load['start']}, at end {load['end']}; "
        f"total {report.details['total_seconds']:.0f} s"
    )
    failed = [f.key for f in report.figures if f.passed is False]
    print(
        "all figures pass" if not failed else f"{len(failed)} figure(s) fail: {', '.join(failed)}"
    )
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
