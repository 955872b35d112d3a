"""Face detection against hand-drawn boxes (issue 9, items 2 and 6).

    python benchmarks/detection.py [--shared ../shared] [--cascade FILE | --no-cascade] \
        [--repeats 3] [--verbose] [--json-out PATH]

Figures, all with the finder the bot builds (``default_face_finder``) on exactly what the
bot passes to ``FaceFinder.find``: the picture decoded and downscaled by
``bot.vision.decode.decode_image`` with the default limits.

* ``quint_groups``: the 37 group pictures (more than one box) of
  ``dev/quint_groups/labels.csv``, 173 hand-drawn boxes. A detection matches a labelled box
  at IoU >= 0.3, greedily by IoU, one detection per box. *Found* is matched boxes / labelled
  boxes (target >= 95%); *extra* is detections matching no box / labelled boxes (target
  <= 5%). The whole-picture stand-in (detector ``"none"``) is never counted as a face.
* ``seed``: the 89 seed pictures, each with one character: how many got a face from a
  real detector (not the stand-in); target 89/89.
* Time of ``FaceFinder.find`` per picture (median of ``--repeats`` runs of each picture),
  median / p95 / max over one-face pictures (the seed set and the single-box pictures of
  ``quint_groups``) and over the group pictures, with OpenCV's threads set as the bot sets
  them; wall-clock and the thread's CPU time (less sensitive to other work on the machine).
  Classification (~15 ms per face) comes on top.

The machine is shared: its description and load average are printed before and after.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THIS_FILE = Path(__file__).resolve()
REPOSITORY = THIS_FILE.parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.recognition import LabelledBox  # noqa: E402 (after the path set-up above)
from benchmarks.recognition import match_boxes as matched_pairs  # noqa: E402
from benchmarks.recognition import parse_boxes as parse_labelled  # noqa: E402
from bot.vision.geometry import Box  # noqa: E402

MATCH_IOU = 0.3
UNDETECTED = "none"
BOXES_COLUMN = "boxes_yolo(class:cx cy w h;...)"


# -- scoring -----------------------------------------------------------------------------------


def yolo_to_box(cx: float, cy: float, w: float, h: float, width: int, height: int) -> Box:
    """A YOLO box (centre and size as fractions of the picture) in pixels of a
    ``width`` × ``height`` picture (``recognition.py``'s reading of the labels)."""
    return LabelledBox("", cx, cy, w, h).to_box(width, height)


def parse_boxes(field: str, width: int, height: int) -> list[tuple[str, Box]]:
    """``character:cx cy w h;…`` (a ``labels.csv`` cell) as ``(character, Box)`` pairs."""
    return [(box.character, box.to_box(width, height)) for box in parse_labelled(field)]


@dataclass(frozen=True)
class Match:
    """How the detections of one picture meet its labelled boxes."""

    labelled: int
    found: int
    extra: int
    pairs: tuple[tuple[int, int], ...]
    """``(detection index, label index)`` of each match."""

    @property
    def missed(self) -> int:
        return self.labelled - self.found


def match_boxes(
    detections: Sequence[Box], labels: Sequence[Box], threshold: float = MATCH_IOU
) -> Match:
    """Greedy matching by IoU (``recognition.py``'s): the best remaining pair first, each box
    used at most once, pairs below ``threshold`` never matched."""
    pairs = matched_pairs(detections, labels, threshold)
    return Match(len(labels), len(pairs), len(detections) - len(pairs), tuple(sorted(pairs)))


def percentile(values: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0–1) of ``values``."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(share * len(ordered))))
    return ordered[rank - 1]


# -- measuring ---------------------------------------------------------------------------------


@dataclass
class Measured:
    name: str
    detectors: list[str]
    boxes: list[Box]
    ms: float
    """Wall-clock time of ``find``, median of the repeats."""
    cpu_ms: float
    """CPU time of the calling thread (OpenCV runs on it alone: see ``main``)."""


def measure(finder: Any, path: Path, repeats: int) -> tuple[Measured, tuple[int, int]]:
    """Decode ``path`` as the bot does, find its faces ``repeats`` times; the pixel size."""
    from bot.vision.decode import decode_image

    pixels = decode_image(path.read_bytes()).pixels
    times = []
    cpu_times = []
    faces = []
    for _ in range(repeats):
        started, cpu_started = time.perf_counter(), time.thread_time()
        faces = finder.find(pixels)
        times.append(1000 * (time.perf_counter() - started))
        cpu_times.append(1000 * (time.thread_time() - cpu_started))
    real = [face for face in faces if face.detector != UNDETECTED]
    measured = Measured(
        path.name,
        [face.detector for face in faces],
        [face.box for face in real],
        statistics.median(times),
        statistics.median(cpu_times),
    )
    return measured, (pixels.shape[1], pixels.shape[0])


def timing(measured: Sequence[Measured]) -> dict[str, Any]:
    """Median, p95 and max of the wall-clock and CPU times of ``measured``."""

    def spread(ms: Sequence[float]) -> dict[str, float]:
        return {"median": statistics.median(ms), "p95": percentile(ms, 0.95), "max": max(ms)}

    return {
        "pictures": len(measured),
        "wall": spread([m.ms for m in measured]),
        "cpu": spread([m.cpu_ms for m in measured]),
    }


def shown_timing(label: str, figures: dict[str, Any]) -> str:
    def shown(kind: str) -> str:
        f = figures[kind]
        return f"median {f['median']:.1f} ms, p95 {f['p95']:.1f} ms, max {f['max']:.1f} ms"

    return (
        f"{label} ({figures['pictures']} pictures): wall {shown('wall')}; thread CPU {shown('cpu')}"
    )


def run(finder: Any, shared: Path, repeats: int, verbose: bool) -> dict[str, Any]:
    groups_dir = shared / "datasets" / "dev" / "quint_groups"
    seed_dir = shared / "datasets" / "seed" / "train"
    rows = list(csv.DictReader((groups_dir / "labels.csv").open(newline="")))
    labelled = found = extra = 0
    group_ms: list[Measured] = []
    one_face_ms: list[Measured] = []
    for row in rows:
        measured, (width, height) = measure(finder, groups_dir / "pictures" / row["file"], repeats)
        labels = parse_boxes(row[BOXES_COLUMN], width, height)
        if len(labels) < 2:
            one_face_ms.append(measured)
            continue
        group_ms.append(measured)
        result = match_boxes(measured.boxes, [box for _, box in labels])
        labelled += result.labelled
        found += result.found
        extra += result.extra
        if verbose and (result.missed or result.extra):
            print(
                f"  {row['file']} ({width}x{height}): {result.found}/{result.labelled} found, "
                f"{result.extra} extra; detectors {measured.detectors}"
            )
    seed_total = seed_found = 0
    for path in sorted(seed_dir.glob("*/*")):
        if not path.is_file():
            continue
        measured, _ = measure(finder, path, repeats)
        seed_total += 1
        seed_found += bool(measured.boxes)
        one_face_ms.append(measured)
        if verbose and not measured.boxes:
            print(f"  seed {path.parent.name}/{path.name}: no face found")
    return {
        "groups": {
            "pictures": len(group_ms),
            "labelled": labelled,
            "found": found,
            "extra": extra,
            "found_share": found / labelled,
            "extra_share": extra / labelled,
        },
        "seed": {"pictures": seed_total, "with_a_face": seed_found},
        "ms_one_face": timing(one_face_ms),
        "ms_groups": timing(group_ms),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=REPOSITORY.parent / "shared")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--cascade", type=Path, help="cascade file (default: the installed one)")
    which.add_argument("--no-cascade", action="store_true", help="the default install without it")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each picture (median)")
    parser.add_argument("--verbose", action="store_true", help="list misses and extra boxes")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(THIS_FILE.parent))  # engine.py is a sibling script
    import cv2
    import numpy as np
    from engine import machine_info, print_machine

    from bot.config import Settings
    from bot.service import share_cores_between
    from bot.vision.cascade import resolve_cascade
    from bot.vision.faces import default_face_finder

    if not (args.shared / "datasets" / "dev" / "quint_groups").is_dir():
        print(f"the shared development sets are absent ({args.shared}): nothing to measure")
        return 2
    info = machine_info()
    print_machine(info)
    # OpenCV's threads as the bot sets them: each recognition worker gets its share of cores.
    workers = Settings.model_fields["workers"].default
    share_cores_between(workers)
    print(f"OpenCV threads: {cv2.getNumThreads()} (as the bot sets them for {workers} workers)")
    cascade = None if args.no_cascade else resolve_cascade(args.cascade)
    finder = default_face_finder(cascade)
    print(f"finder: {finder.describe()}")
    finder.find(np.zeros((64, 64, 3), np.uint8))  # imports and first-use costs
    result = run(finder, args.shared, args.repeats, args.verbose)
    load_after = [round(x, 2) for x in os.getloadavg()]
    groups = result["groups"]
    print(
        f"quint_groups, {groups['pictures']} group pictures: found {groups['found']}/"
        f"{groups['labelled']} = {100 * groups['found_share']:.1f}% (target >= 95%), extra "
        f"{groups['extra']} = {100 * groups['extra_share']:.1f}% of labelled (target <= 5%)"
    )
    seed = result["seed"]
    print(f"seed: {seed['with_a_face']}/{seed['pictures']} pictures with a detected face")
    print(shown_timing("time, one-face pictures", result["ms_one_face"]))
    print(shown_timing("time, group pictures", result["ms_groups"]))
    print("load average after (1, 5, 15 min): " + ", ".join(map(str, load_after)))
    if args.json_out:
        result.update(machine=info, load_average_after=load_after, finder=finder.describe())
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
