"""Tests for face crops with a margin (bot.vision.crop)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.vision.crop import (
    CONTEXT_SIZE,
    CropSettings,
    context_crop,
    crop_face,
    crop_region,
    crop_views,
)
from bot.vision.decode import decode_image
from bot.vision.geometry import Box


def quadrants(size: int = 40) -> np.ndarray:
    """A picture whose four quadrants are red, green, blue and white (top-left first)."""
    image = np.zeros((size, size, 3), np.uint8)
    half = size // 2
    image[:half, :half] = (255, 0, 0)
    image[:half, half:] = (0, 255, 0)
    image[half:, :half] = (0, 0, 255)
    image[half:, half:] = (255, 255, 255)
    return image


@pytest.mark.parametrize(
    ("box", "margin", "lift", "expected"),
    [
        (Box(10, 10, 20, 20), 1.0, 0.0, Box(10, 10, 20, 20)),
        (Box(10, 10, 20, 20), 1.5, 0.0, Box(5, 5, 30, 30)),
        (Box(10, 10, 20, 20), 2.0, 0.0, Box(0, 0, 40, 40)),
        # The longer side sets the square; the centre stays.
        (Box(10, 10, 40, 20), 1.0, 0.0, Box(10, 0, 40, 40)),
        # Lift moves the square up by a share of the box height (hair sits above the face).
        (Box(10, 10, 20, 20), 1.0, 0.1, Box(10, 8, 20, 20)),
        # It may reach outside the picture: cropping deals with that.
        (Box(0, 0, 10, 10), 3.0, 0.0, Box(-10, -10, 30, 30)),
    ],
)
def test_crop_region(box: Box, margin: float, lift: float, expected: Box) -> None:
    assert crop_region(box, margin, lift) == expected


@given(
    st.builds(
        Box,
        st.integers(-300, 300),
        st.integers(-300, 300),
        st.integers(1, 300),
        st.integers(1, 300),
    ),
    st.floats(1.0, 3.0),
)
def test_crop_region_is_a_square_holding_the_face_box(box: Box, margin: float) -> None:
    region = crop_region(box, margin, lift=0.0)
    assert region.w == region.h
    assert region.x <= box.x and box.x + box.w <= region.x + region.w
    assert region.y <= box.y and box.y + box.h <= region.y + region.h


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 48),
    st.integers(1, 48),
    st.tuples(st.integers(-150, 150), st.integers(-150, 150)),
    st.tuples(st.integers(1, 100), st.integers(1, 100)),
    st.floats(0.5, 2.0),
    st.floats(-0.5, 0.5),
    st.sampled_from([1, 7, 32]),
)
def test_crop_face_is_always_size_by_size_rgb(
    width: int,
    height: int,
    corner: tuple[int, int],
    sides: tuple[int, int],
    margin: float,
    lift: float,
    size: int,
) -> None:
    image = np.random.default_rng(width * 100 + height).integers(
        0, 256, (height, width, 3), np.uint8
    )
    crop = crop_face(image, Box(*corner, *sides), margin, lift, size)
    assert crop.shape == (size, size, 3)
    assert crop.dtype == np.uint8
    assert crop.flags.c_contiguous


def test_crop_of_a_box_inside_the_picture_shows_that_part() -> None:
    crop = crop_face(quadrants(), Box(0, 0, 20, 20), 1.0, 0.0, 10)
    assert (crop == (255, 0, 0)).all()


def test_parts_outside_the_picture_repeat_its_edge() -> None:
    # The top-left red quadrant, with a 2× margin, reaches 10 px past the top and left edges.
    crop = crop_face(quadrants(), Box(0, 0, 20, 20), 2.0, 0.0, 40)
    assert (crop[:25, :25] == (255, 0, 0)).all()
    assert (crop[-5:, -5:] == (255, 255, 255)).all()


def test_a_region_wholly_outside_the_picture_repeats_the_nearest_edge() -> None:
    # Right of the picture, level with its top half: the right edge there is green.
    crop = crop_face(quadrants(), Box(100, 0, 10, 10), 1.0, 0.0, 8)
    assert (crop == (0, 255, 0)).all()


def test_crop_of_a_one_pixel_picture_is_that_colour() -> None:
    image = np.array([[[10, 200, 30]]], np.uint8)
    crop = crop_face(image, Box(0, 0, 1, 1), 1.5, 0.1, 16)
    assert crop.shape == (16, 16, 3)
    assert (crop == (10, 200, 30)).all()


def test_crop_views_gives_one_view_per_margin_in_order() -> None:
    image = quadrants(80)
    settings_ = CropSettings(margins=(0.5, 2.0), lift=0.0, size=8)
    views = crop_views(image, Box(20, 20, 40, 40), settings_)
    assert views.shape == (2, 8, 8, 3)
    assert views.dtype == np.uint8
    # The tight view sees only the middle of the picture, the wide one all four colours.
    np.testing.assert_array_equal(views[0], crop_face(image, Box(20, 20, 40, 40), 0.5, 0.0, 8))
    np.testing.assert_array_equal(views[1], crop_face(image, Box(20, 20, 40, 40), 2.0, 0.0, 8))


def test_crop_settings_round_trip_through_a_dict() -> None:
    settings_ = CropSettings(margins=(1.0, 1.25, 1.8), lift=0.05, size=160)
    assert CropSettings.from_dict(settings_.to_dict()) == settings_


@pytest.mark.parametrize(
    "margins", [[], [1.0, 0.0], [-1.0]], ids=["no margins", "zero margin", "negative"]
)
def test_crop_settings_refuse_margins_that_are_not_positive(margins: list[float]) -> None:
    with pytest.raises(ValueError, match="margins must be positive"):
        CropSettings.from_dict({"margins": margins, "lift": 0.1, "size": 224})


def test_the_stored_context_crop_is_a_jpeg_twice_the_face() -> None:
    picture = quadrants(400)

    stored = decode_image(context_crop(picture, Box(150, 150, 100, 100), lift=0.0))

    assert stored.original_size == (CONTEXT_SIZE, CONTEXT_SIZE)
    # Twice the face box around its centre reaches every quadrant of the picture.
    corners = stored.pixels[[10, 10, -10, -10], [10, -10, 10, -10]]
    assert [tuple(int(v) // 64 for v in c) for c in corners] == [
        (3, 0, 0),
        (0, 3, 0),
        (0, 0, 3),
        (3, 3, 3),
    ]
