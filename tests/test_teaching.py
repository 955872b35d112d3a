"""The faces /teach may learn from: only what a detector found."""

from __future__ import annotations

import numpy as np
import pytest

from bot.teaching import teachable_faces
from bot.vision.crop import CONTEXT_SIZE
from bot.vision.decode import decode_image
from tests.pictures import (
    CHARACTERS,
    blank_picture,
    character_picture,
    encode,
    group_picture,
    landscape_picture,
)


def test_a_portrait_gives_one_crop_and_no_question() -> None:
    found = teachable_faces(
        encode(character_picture(CHARACTERS[0], np.random.default_rng(5))), None
    )

    assert len(found.crops) == 1
    assert decode_image(found.crops[0]).original_size == (CONTEXT_SIZE, CONTEXT_SIZE)
    assert found.numbered_jpeg is None


def test_a_group_picture_gives_a_crop_per_face_and_the_numbered_picture() -> None:
    found = teachable_faces(encode(group_picture()), None)

    assert len(found.crops) == 2
    assert found.numbered_jpeg is not None
    assert decode_image(found.numbered_jpeg).original_size == (1000, 500)


@pytest.mark.parametrize("picture", [blank_picture, landscape_picture], ids=["blank", "landscape"])
def test_a_picture_without_an_anime_face_gives_nothing_to_learn(picture: object) -> None:
    found = teachable_faces(encode(picture()), None)  # type: ignore[operator]

    assert found.crops == ()
    assert found.numbered_jpeg is None
