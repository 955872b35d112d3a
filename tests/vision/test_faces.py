"""Tests for anime face detection and merging (bot.vision.faces)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import PIL
import pytest
from PIL import Image

from bot.vision.cascade import bundled_cascade
from bot.vision.decode import DecodeLimits, decode_image
from bot.vision.faces import (
    AnimeFaceDetector,
    CascadeDetector,
    DetectorConfigError,
    Face,
    FaceFinder,
    PortraitFallback,
    default_face_finder,
    downscale,
    merge_faces,
    prominence,
)
from bot.vision.geometry import Box
from tests.pictures import CHARACTERS, character_picture
from tests.shared_data import SEED_TRAIN

CASCADE = bundled_cascade()
# animeface finds this face (at about Box(266, 86, 239, 239)) with likelihood 1.0.
KNOWN_PICTURE = SEED_TRAIN / "nishikino_maki" / "1.png"

requires_seed_picture = pytest.mark.skipif(
    not KNOWN_PICTURE.is_file(), reason=f"the shared seed pictures are absent ({KNOWN_PICTURE})"
)


@dataclass
class FixedDetector:
    """A detector that always answers the same faces and counts how often it was asked."""

    name: str
    boxes: list[tuple[Box, float]] = field(default_factory=list)
    calls: int = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        return [Face(box, self.name, confidence) for box, confidence in self.boxes]


def blank(width: int = 400, height: int = 300) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def seed_pixels() -> np.ndarray:
    # At full size, so the known box is in the original picture's pixels.
    return decode_image(KNOWN_PICTURE.read_bytes(), DecodeLimits(target_side=None)).pixels


# ---------------------------------------------------------------------------------------------
# Regression guards for the facts in ARCHITECTURE.md
# ---------------------------------------------------------------------------------------------


def test_pillow_is_older_than_12() -> None:
    major = int(PIL.__version__.split(".")[0])
    assert major < 12, (
        f"Pillow {PIL.__version__} is installed: animeface 2.0.3 reads Pillow's internal image "
        "struct and silently finds no face with Pillow 12 or newer (keep pillow<12)"
    )


@requires_seed_picture
def test_animeface_finds_the_face_on_a_known_picture() -> None:
    faces = AnimeFaceDetector().detect(seed_pixels())
    assert faces, (
        "animeface found no face on a picture it is known to find one on: is Pillow >= 12 "
        "installed, or did animeface change?"
    )
    best = max(faces, key=lambda face: face.confidence)
    assert best.detector == "animeface"
    assert best.confidence >= 0.9
    assert best.box.iou(Box(266, 86, 239, 239)) > 0.7


@requires_seed_picture
def test_cascade_finds_the_face_on_a_known_picture() -> None:
    faces = CascadeDetector(CASCADE).detect(seed_pixels())
    assert len(faces) == 1
    assert faces[0].detector == "cascade"
    assert faces[0].box.overlap_of_smaller(Box(266, 86, 239, 239)) > 0.8


# ---------------------------------------------------------------------------------------------
# CascadeDetector set-up
# ---------------------------------------------------------------------------------------------


def test_cascade_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DetectorConfigError, match="cascade file not found"):
        CascadeDetector(tmp_path / "lbpcascade_animeface.xml")


def test_cascade_refuses_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DetectorConfigError, match="cascade file not found"):
        CascadeDetector(tmp_path)


# OpenCV loads some wrong files silently as an empty classifier, and raises on others.
NOT_CASCADES_OPENCV_LOADS_EMPTY = {
    "empty opencv storage": '<?xml version="1.0"?>\n<opencv_storage>\n</opencv_storage>\n',
    "cascade without stages": (
        '<?xml version="1.0"?>\n<opencv_storage>\n'
        "<cascade><stageType>BOOST</stageType></cascade></opencv_storage>\n"
    ),
}
NOT_CASCADES_OPENCV_RAISES_ON = {
    "plain text": "hello, this is not a cascade",
    "empty file": "",
    "unrelated xml": '<?xml version="1.0"?>\n<settings><colour>red</colour></settings>\n',
    "opencv yaml": "%YAML:1.0\n---\nfoo: 1\n",
}


@pytest.mark.parametrize(
    "text",
    [
        *(pytest.param(text, id=name) for name, text in NOT_CASCADES_OPENCV_LOADS_EMPTY.items()),
        *(pytest.param(text, id=name) for name, text in NOT_CASCADES_OPENCV_RAISES_ON.items()),
    ],
)
def test_cascade_refuses_a_file_that_is_not_a_cascade(tmp_path: Path, text: str) -> None:
    path = tmp_path / "lbpcascade_animeface.xml"
    path.write_text(text)
    with pytest.raises(DetectorConfigError, match="not a cascade"):
        CascadeDetector(path)


def test_cascade_refuses_a_truncated_cascade_file(tmp_path: Path) -> None:
    path = tmp_path / "lbpcascade_animeface.xml"
    path.write_bytes(CASCADE.read_bytes()[:20_000])  # an interrupted download
    with pytest.raises(DetectorConfigError, match="not a cascade"):
        CascadeDetector(path)


# ---------------------------------------------------------------------------------------------
# Detecting on a downscaled copy
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "max_side", "expected_shape", "factor"),
    [
        ((300, 400, 3), 500, (300, 400, 3), 1.0),
        ((300, 400, 3), 400, (300, 400, 3), 1.0),
        ((300, 400, 3), 200, (150, 200, 3), 0.5),
        ((1000, 10, 3), 100, (100, 1, 3), 0.1),
    ],
)
def test_downscale_shrinks_the_longer_side(
    shape: tuple[int, int, int], max_side: int, expected_shape: tuple[int, int, int], factor: float
) -> None:
    small, used = downscale(np.zeros(shape, np.uint8), max_side)
    assert small.shape == expected_shape
    assert used == pytest.approx(factor)


def fake_animeface(found: list[tuple[Box, float]], seen: list[tuple[int, int]]) -> ModuleType:
    """A stand-in for the animeface module answering ``found`` (boxes in the image it is given)."""

    def detect(image: Image.Image) -> list[SimpleNamespace]:
        seen.append(image.size)
        return [
            SimpleNamespace(
                likelihood=likelihood,
                face=SimpleNamespace(pos=SimpleNamespace(x=b.x, y=b.y, width=b.w, height=b.h)),
            )
            for b, likelihood in found
        ]

    module = ModuleType("animeface")
    module.detect = detect  # type: ignore[attr-defined]
    return module


def test_animeface_detects_on_a_downscaled_copy_and_maps_boxes_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int]] = []
    found = [(Box(10, 20, 30, 40), 0.9), (Box(0, 0, 5, 5), 0.2)]
    monkeypatch.setitem(sys.modules, "animeface", fake_animeface(found, seen))
    faces = AnimeFaceDetector(detect_side=200, min_likelihood=0.5).detect(blank(800, 600))
    assert seen == [(200, 150)]
    assert faces == [Face(Box(40, 80, 120, 160), "animeface", 0.9)]


@requires_seed_picture
def test_animeface_finds_the_same_face_at_full_and_reduced_size() -> None:
    pixels = seed_pixels()
    (full,) = AnimeFaceDetector(detect_side=max(pixels.shape)).detect(pixels)
    (reduced,) = AnimeFaceDetector(detect_side=288).detect(pixels)
    assert reduced.box.overlap_of_smaller(full.box) > 0.9
    assert reduced.box.iou(full.box) > 0.5


def test_animeface_ignores_faces_below_the_likelihood_floor() -> None:
    picture = character_picture(CHARACTERS[1], np.random.default_rng(3))
    assert AnimeFaceDetector().detect(picture)
    assert AnimeFaceDetector(min_likelihood=1.01).detect(picture) == []


# ---------------------------------------------------------------------------------------------
# The portrait fallback
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(400, 300), (300, 400), (1, 1), (2, 50), (50, 2)])
def test_fallback_is_one_square_inside_the_picture(width: int, height: int) -> None:
    (face,) = PortraitFallback().detect(blank(width, height))
    box = face.box
    assert face.detector == "fallback"
    assert face.confidence == 0.0
    assert box.w == box.h >= 1
    assert box.x >= 0 and box.x + box.w <= width
    assert box.y >= 0 and box.y + box.h <= height


def test_fallback_sits_centred_a_little_above_the_middle() -> None:
    (face,) = PortraitFallback().detect(blank(400, 600))
    cx, cy = face.box.center
    assert cx == pytest.approx(200, abs=1)
    assert 0.3 * 600 <= cy < 0.5 * 600


# ---------------------------------------------------------------------------------------------
# Merging boxes from several detectors
# ---------------------------------------------------------------------------------------------


def test_overlapping_boxes_from_two_detectors_become_one_face() -> None:
    cascade = Face(Box(100, 100, 100, 100), "cascade", 0.8)
    animeface = Face(Box(110, 105, 90, 90), "animeface", 0.6)
    (merged,) = merge_faces([animeface, cascade])
    assert merged.detector == "cascade+animeface"  # the more confident detector first
    assert merged.box == cascade.box  # the more confident box stays
    assert merged.confidence == pytest.approx(1 - 0.2 * 0.4)  # agreement raises confidence


def test_three_detectors_agreeing_are_all_named() -> None:
    faces = [
        Face(Box(100, 100, 100, 100), "a", 0.9),
        Face(Box(105, 100, 100, 100), "b", 0.5),
        Face(Box(100, 95, 100, 100), "c", 0.2),
    ]
    (merged,) = merge_faces(faces)
    assert merged.detector == "a+b+c"


def test_separate_faces_stay_separate() -> None:
    left = Face(Box(0, 0, 100, 100), "cascade", 0.9)
    right = Face(Box(150, 0, 100, 100), "animeface", 0.9)
    touching = Face(Box(60, 0, 100, 100), "animeface", 0.5)  # 40% of it over `left`
    merged = merge_faces([left, right, touching])
    assert sorted(face.box.x for face in merged) == [0, 60, 150]
    assert all("+" not in face.detector for face in merged)


def test_a_small_box_inside_a_large_one_is_merged() -> None:
    large = Face(Box(0, 0, 200, 200), "cascade", 0.9)
    small = Face(Box(50, 50, 40, 40), "animeface", 0.7)
    (merged,) = merge_faces([small, large])
    assert merged.box == large.box
    assert merged.detector == "cascade+animeface"


def test_duplicates_from_one_detector_fold_without_repeating_its_name() -> None:
    faces = [Face(Box(0, 0, 100, 100), "cascade", 0.9), Face(Box(5, 5, 100, 100), "cascade", 0.5)]
    (merged,) = merge_faces(faces)
    assert merged == faces[0]


def test_merging_nothing_gives_nothing() -> None:
    assert merge_faces([]) == []


# ---------------------------------------------------------------------------------------------
# Prominence and the FaceFinder
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("more", "less"),
    [
        (Face(Box(100, 60, 200, 200), "x", 0.5), Face(Box(150, 100, 100, 100), "x", 0.5)),
        (Face(Box(150, 70, 100, 100), "x", 0.5), Face(Box(0, 200, 100, 100), "x", 0.5)),
        (Face(Box(150, 70, 100, 100), "x", 1.0), Face(Box(150, 70, 100, 100), "x", 0.0)),
    ],
    ids=["larger", "more central", "more confident"],
)
def test_prominence_ranks(more: Face, less: Face) -> None:
    assert prominence(more, 400, 300) > prominence(less, 400, 300)


def test_finder_puts_the_most_prominent_face_first() -> None:
    small = (Box(10, 10, 40, 40), 0.9)
    large = (Box(150, 60, 150, 150), 0.9)
    medium = (Box(320, 150, 70, 70), 0.9)
    finder = FaceFinder([FixedDetector("animeface", [small, large, medium])])
    found = finder.find(blank())
    assert [face.box for face in found] == [large[0], medium[0], small[0]]


def test_finder_merges_what_the_primary_detectors_agree_on() -> None:
    first = FixedDetector("cascade", [(Box(100, 100, 100, 100), 0.9)])
    second = FixedDetector("animeface", [(Box(104, 98, 96, 96), 0.8)])
    (face,) = FaceFinder([first, second]).find(blank())
    assert face.detector == "cascade+animeface"


def test_backups_are_not_asked_when_the_primary_finds_a_face() -> None:
    primary = FixedDetector("cascade", [(Box(100, 100, 100, 100), 0.9)])
    backup = FixedDetector("animeface", [(Box(10, 10, 50, 50), 0.9)])
    fallback = FixedDetector("fallback", [(Box(0, 0, 10, 10), 0.0)])
    found = FaceFinder([primary], [backup], fallback).find(blank())
    assert [face.detector for face in found] == ["cascade"]
    assert (backup.calls, fallback.calls) == (0, 0)


def test_backups_answer_when_the_primary_finds_nothing() -> None:
    primary = FixedDetector("cascade")
    backups = [
        FixedDetector("animeface", [(Box(10, 10, 50, 50), 0.9)]),
        FixedDetector("cascade-relaxed", [(Box(200, 100, 60, 60), 0.4)]),
    ]
    fallback = FixedDetector("fallback", [(Box(0, 0, 10, 10), 0.0)])
    found = FaceFinder([primary], backups, fallback).find(blank())
    assert sorted(face.detector for face in found) == ["animeface", "cascade-relaxed"]
    assert primary.calls == 1 and fallback.calls == 0


def test_fallback_answers_when_no_detector_finds_a_face() -> None:
    finder = FaceFinder(
        [FixedDetector("cascade")], [FixedDetector("animeface")], PortraitFallback()
    )
    (face,) = finder.find(blank())
    assert face.detector == "fallback"


def test_without_a_fallback_a_picture_may_have_no_face() -> None:
    assert FaceFinder([FixedDetector("cascade")]).find(blank()) == []


def test_finder_needs_at_least_one_detector() -> None:
    with pytest.raises(DetectorConfigError, match="no face detector"):
        FaceFinder([])


def test_default_finder_without_cascade_uses_animeface_then_the_fallback() -> None:
    finder = default_face_finder(None)
    assert [d.name for d in finder.primary] == ["animeface"]
    assert finder.backups == ()
    assert finder.fallback is not None and finder.fallback.name == "fallback"


def test_default_finder_with_cascade_backs_it_up_with_animeface() -> None:
    finder = default_face_finder(CASCADE)
    assert [d.name for d in finder.primary] == ["cascade"]
    assert [d.name for d in finder.backups] == ["animeface", "cascade-relaxed"]
    assert finder.fallback is not None and finder.fallback.name == "fallback"


def test_default_finder_finds_a_drawn_face() -> None:
    picture = character_picture(CHARACTERS[2], np.random.default_rng(3))
    faces = default_face_finder(None).find(picture)
    assert faces[0].detector == "animeface"
    assert faces[0].box.iou(Box(64, 64, 128, 128)) > 0.3


def test_default_finder_falls_back_on_a_picture_without_a_face() -> None:
    (face,) = default_face_finder(None).find(blank())
    assert face.detector == "fallback"
