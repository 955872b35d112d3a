"""How ``benchmarks/detection.py`` reads hand-drawn boxes and scores detections against them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bot.vision.geometry import Box

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "detection.py"


@pytest.fixture(scope="module")
def detection() -> ModuleType:
    spec = importlib.util.spec_from_file_location("detection_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_a_yolo_box_becomes_pixels(detection: ModuleType) -> None:
    # Centre (0.5, 0.25), half the width, a fifth of the height of a 200×100 picture.
    assert detection.yolo_to_box(0.5, 0.25, 0.5, 0.2, 200, 100) == Box(50, 15, 100, 20)


def test_a_tiny_yolo_box_keeps_at_least_one_pixel(detection: ModuleType) -> None:
    assert detection.yolo_to_box(0.5, 0.5, 0.0, 0.0, 100, 100) == Box(50, 50, 1, 1)


def test_a_labels_cell_gives_every_character_and_box(detection: ModuleType) -> None:
    cell = "nakano_miku:0.25 0.5 0.5 0.5;nakano_nino:0.75 0.5 0.1 0.2"
    assert detection.parse_boxes(cell, 400, 200) == [
        ("nakano_miku", Box(0, 50, 200, 100)),
        ("nakano_nino", Box(280, 80, 40, 40)),
    ]


def test_a_trailing_separator_is_ignored(detection: ModuleType) -> None:
    assert detection.parse_boxes("a:0.5 0.5 1 1;", 10, 10) == [("a", Box(0, 0, 10, 10))]


def test_a_box_without_four_numbers_is_refused(detection: ModuleType) -> None:
    with pytest.raises(ValueError, match="4 numbers"):
        detection.parse_boxes("a:0.5 0.5 1", 10, 10)


def test_every_detection_matching_its_own_label_is_found(detection: ModuleType) -> None:
    labels = [Box(0, 0, 100, 100), Box(200, 0, 100, 100)]
    detections = [Box(205, 5, 100, 100), Box(5, 0, 90, 100)]
    match = detection.match_boxes(detections, labels)
    assert (match.labelled, match.found, match.extra, match.missed) == (2, 2, 0, 0)
    assert match.pairs == ((0, 1), (1, 0))


def test_a_detection_below_the_iou_threshold_is_extra_and_its_label_missed(
    detection: ModuleType,
) -> None:
    label = Box(0, 0, 100, 100)
    shifted = Box(60, 0, 100, 100)  # IoU 40/160 = 0.25
    assert label.iou(shifted) == pytest.approx(0.25)
    match = detection.match_boxes([shifted], [label])
    assert (match.found, match.extra, match.missed) == (0, 1, 1)
    assert detection.match_boxes([shifted], [label], threshold=0.2).found == 1


def test_one_detection_matches_one_label_only(detection: ModuleType) -> None:
    # One wide box over two labelled faces counts once; the other face is missed.
    labels = [Box(0, 0, 100, 100), Box(100, 0, 100, 100)]
    match = detection.match_boxes([Box(0, 0, 160, 100)], labels)
    assert (match.found, match.extra, match.missed) == (1, 0, 1)
    assert match.pairs == ((0, 0),)


def test_two_detections_of_one_face_leave_one_extra(detection: ModuleType) -> None:
    match = detection.match_boxes([Box(0, 0, 100, 100), Box(5, 5, 100, 100)], [Box(0, 0, 100, 100)])
    assert (match.found, match.extra) == (1, 1)
    assert match.pairs == ((0, 0),)  # the better box is the match


def test_matching_is_greedy_by_iou(detection: ModuleType) -> None:
    # Detection 0 overlaps both labels, best label 1; detection 1 only fits label 1 a little.
    labels = [Box(0, 0, 100, 100), Box(50, 0, 100, 100)]
    detections = [Box(45, 0, 100, 100), Box(90, 0, 100, 100)]
    match = detection.match_boxes(detections, labels)
    # Greedy takes (0, 1) first (IoU ~0.9); detection 1 then only has label 0 (IoU 0.05).
    assert match.pairs == ((0, 1),)
    assert (match.found, match.extra, match.missed) == (1, 1, 1)


def test_nothing_detected_misses_every_label(detection: ModuleType) -> None:
    match = detection.match_boxes([], [Box(0, 0, 10, 10)])
    assert (match.found, match.extra, match.missed) == (0, 0, 1)


@pytest.mark.parametrize(
    ("share", "expected"), [(0.5, 50.0), (0.95, 95.0), (1.0, 100.0), (0.0, 1.0)]
)
def test_percentile_is_nearest_rank(detection: ModuleType, share: float, expected: float) -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert detection.percentile(values, share) == expected
