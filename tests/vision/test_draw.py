"""Numbered boxes drawn on pictures (bot.vision.draw)."""

from __future__ import annotations

import numpy as np
import pytest

from bot.vision.decode import decode_image
from bot.vision.draw import ANNOTATED_SIDE, NEUTRAL, SURE, UNSURE, numbered_faces
from bot.vision.geometry import Box

GREY = (128, 128, 128)


def grey(width: int, height: int) -> np.ndarray:
    return np.full((height, width, 3), GREY, np.uint8)


def near(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> bool:
    """JPEG moves colours a little."""
    return bool(np.all(np.abs(pixel.astype(int) - colour) <= tolerance))


@pytest.mark.parametrize("colour", [SURE, UNSURE, NEUTRAL])
def test_each_box_is_drawn_in_its_colour(colour: tuple[int, int, int]) -> None:
    drawn = decode_image(numbered_faces(grey(400, 300), [Box(100, 100, 120, 120)], [colour]))

    # The middle of the box's right edge (the number's label sits at the top left).
    assert near(drawn.pixels[160, 220], colour)
    assert near(drawn.pixels[160, 160], GREY)  # inside the box nothing changes


def test_boxes_are_scaled_with_the_picture() -> None:
    boxes = [Box(200, 200, 240, 240)]  # in the coordinates of a picture twice as large

    drawn = decode_image(numbered_faces(grey(400, 300), boxes, [SURE], scale=0.5))

    assert near(drawn.pixels[160, 220], SURE)


def test_a_large_picture_is_shrunk_to_the_annotated_side() -> None:
    drawn = decode_image(numbered_faces(grey(3000, 1500), [Box(0, 0, 100, 100)], [SURE]))

    assert drawn.original_size == (ANNOTATED_SIDE, ANNOTATED_SIDE // 2)


def test_every_box_needs_a_colour() -> None:
    with pytest.raises(ValueError, match="shorter"):
        numbered_faces(grey(100, 100), [Box(0, 0, 10, 10), Box(20, 20, 10, 10)], [SURE])
