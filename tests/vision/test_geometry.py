"""Tests for Box arithmetic (bot.vision.geometry)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.vision.geometry import Box

coordinates = st.integers(-500, 500)
sides = st.integers(0, 500)
boxes = st.builds(Box, coordinates, coordinates, sides, sides)
picture_sides = st.integers(1, 400)


@pytest.mark.parametrize(
    ("box", "area", "center"),
    [
        (Box(0, 0, 10, 20), 200, (5.0, 10.0)),
        (Box(-4, 6, 3, 1), 3, (-2.5, 6.5)),
        (Box(5, 5, 0, 9), 0, (5.0, 9.5)),
        (Box(5, 5, -3, 9), 0, (3.5, 9.5)),
    ],
)
def test_area_and_center(box: Box, area: int, center: tuple[float, float]) -> None:
    assert box.area == area
    assert box.center == center


@pytest.mark.parametrize(
    ("box", "factor", "expected"),
    [
        (Box(10, 20, 30, 40), 1.0, Box(10, 20, 30, 40)),
        (Box(10, 20, 30, 40), 2.0, Box(20, 40, 60, 80)),
        (Box(10, 20, 30, 40), 0.5, Box(5, 10, 15, 20)),
        # Corners are scaled, so a box and its neighbour still meet after scaling.
        (Box(3, 3, 3, 3), 1 / 3, Box(1, 1, 1, 1)),
        # Never smaller than one pixel, however far it is shrunk.
        (Box(100, 100, 2, 2), 0.01, Box(1, 1, 1, 1)),
    ],
)
def test_scaled_multiplies_the_corners(box: Box, factor: float, expected: Box) -> None:
    assert box.scaled(factor) == expected


@pytest.mark.parametrize(
    ("box", "size", "expected"),
    [
        (Box(10, 10, 20, 20), (100, 100), Box(10, 10, 20, 20)),
        (Box(-10, -5, 30, 30), (100, 100), Box(0, 0, 20, 25)),
        (Box(90, 95, 30, 30), (100, 100), Box(90, 95, 10, 5)),
        (Box(-50, -50, 400, 400), (100, 60), Box(0, 0, 100, 60)),
        # Wholly outside: the nearest one-pixel box inside the picture.
        (Box(200, 200, 10, 10), (100, 100), Box(99, 99, 1, 1)),
        (Box(-30, -30, 10, 10), (100, 100), Box(0, 0, 1, 1)),
        (Box(0, 0, 5, 5), (1, 1), Box(0, 0, 1, 1)),
    ],
)
def test_clipped_cuts_to_the_picture(box: Box, size: tuple[int, int], expected: Box) -> None:
    assert box.clipped(*size) == expected


@given(boxes, picture_sides, picture_sides)
def test_clipped_box_is_inside_the_picture_and_not_empty(box: Box, width: int, height: int) -> None:
    clipped = box.clipped(width, height)
    assert clipped.w >= 1 and clipped.h >= 1
    assert clipped.x >= 0 and clipped.x + clipped.w <= width
    assert clipped.y >= 0 and clipped.y + clipped.h <= height


@given(boxes, picture_sides, picture_sides)
def test_clipping_a_box_inside_the_picture_changes_nothing(
    box: Box, width: int, height: int
) -> None:
    inside = Box(box.x % width, box.y % height, 1, 1)
    grown = Box(inside.x, inside.y, width - inside.x, height - inside.y)
    assert inside.clipped(width, height) == inside
    assert grown.clipped(width, height) == grown


@pytest.mark.parametrize(
    ("a", "b", "intersection", "iou", "overlap"),
    [
        (Box(0, 0, 10, 10), Box(0, 0, 10, 10), 100, 1.0, 1.0),
        (Box(0, 0, 10, 10), Box(5, 0, 10, 10), 50, 50 / 150, 0.5),
        (Box(0, 0, 10, 10), Box(10, 0, 10, 10), 0, 0.0, 0.0),
        (Box(0, 0, 10, 10), Box(50, 50, 10, 10), 0, 0.0, 0.0),
        # One inside the other: a small IoU, but the smaller box is wholly covered.
        (Box(0, 0, 100, 100), Box(40, 40, 10, 10), 100, 0.01, 1.0),
        (Box(0, 0, 0, 0), Box(0, 0, 0, 0), 0, 0.0, 0.0),
        (Box(0, 0, 10, 10), Box(2, 2, 0, 5), 0, 0.0, 0.0),
    ],
)
def test_overlap_measures(a: Box, b: Box, intersection: int, iou: float, overlap: float) -> None:
    assert a.intersection(b) == intersection
    assert a.iou(b) == pytest.approx(iou)
    assert a.overlap_of_smaller(b) == pytest.approx(overlap)


@given(boxes, boxes)
def test_iou_is_symmetric_and_between_0_and_1(a: Box, b: Box) -> None:
    assert a.iou(b) == b.iou(a)
    assert 0.0 <= a.iou(b) <= 1.0


@given(boxes, boxes)
def test_overlap_of_smaller_is_symmetric_and_between_0_and_1(a: Box, b: Box) -> None:
    assert a.overlap_of_smaller(b) == b.overlap_of_smaller(a)
    assert 0.0 <= a.overlap_of_smaller(b) <= 1.0


@given(boxes)
def test_a_non_empty_box_overlaps_itself_fully(box: Box) -> None:
    if box.area:
        assert box.iou(box) == 1.0
        assert box.overlap_of_smaller(box) == 1.0


def test_as_list_is_x_y_w_h() -> None:
    assert Box(1, 2, 3, 4).as_list() == [1, 2, 3, 4]
