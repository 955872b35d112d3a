"""Tests for anime face detection and merging (bot.vision.faces)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, SimpleNamespace

import cv2
import numpy as np
import PIL
import pytest
from PIL import Image

from bot.vision.cascade import bundled_cascade
from bot.vision.decode import DecodeLimits, decode_image
from bot.vision.faces import (
    PROBE_SCALE,
    AnimeFaceDetector,
    CascadeDetector,
    DetectorConfigError,
    Doubtful,
    Face,
    FaceFinder,
    HintingDetector,
    NoFace,
    default_face_finder,
    downscale,
    is_one_face_alone,
    merge_faces,
    prominence,
    resize_to,
    rotate_expanded,
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
# The stand-in box when no face is found
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), [(400, 300), (300, 400), (1, 1), (2, 50)])
def test_no_face_is_one_square_inside_the_picture_named_none(width: int, height: int) -> None:
    (face,) = NoFace().detect(blank(width, height))
    assert (face.detector, face.confidence) == ("none", 0.0)
    assert face.box.w == face.box.h == max(1, round(0.6 * min(width, height)))
    assert face.box.clipped(width, height) == face.box


def test_no_face_sits_centred_a_little_above_the_middle() -> None:
    (face,) = NoFace().detect(blank(400, 600))
    assert face.box == Box(80, 108, 240, 240)


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


@dataclass
class HintedDetector(FixedDetector):
    """A fixed detector that also reports weak hits (as the cascade does)."""

    hints: list[Box] = field(default_factory=list)

    def detect_with_hints(self, image: np.ndarray) -> tuple[list[Face], list[Box]]:
        return self.detect(image), list(self.hints)


ONE = (Box(100, 100, 100, 100), 0.9)
OTHER = (Box(250, 120, 90, 90), 0.9)
TILTED = (Box(20, 150, 80, 80), 0.9)


def stages(
    primary: FixedDetector, tilted_boxes: list[tuple[Box, float]] | None = None
) -> tuple[FaceFinder, FixedDetector, FixedDetector, FixedDetector]:
    """A finder with ``primary``, one tilted detector, one backup and a counting fallback."""
    tilted = FixedDetector("cascade-tilted", tilted_boxes if tilted_boxes is not None else [TILTED])
    backup = FixedDetector("animeface", [(Box(10, 10, 50, 50), 0.9)])
    fallback = FixedDetector("none", [(Box(0, 0, 400, 300), 0.0)])
    return FaceFinder([primary], [backup], fallback, tilted=[tilted]), tilted, backup, fallback


def test_a_lone_face_skips_the_tilted_pass_and_the_backups() -> None:
    finder, tilted, backup, fallback = stages(FixedDetector("cascade", [ONE]))
    found = finder.find(blank())
    assert [face.box for face in found] == [ONE[0]]
    assert (tilted.calls, backup.calls, fallback.calls) == (0, 0, 0)


def test_two_faces_bring_in_the_tilted_pass_but_not_the_backups() -> None:
    finder, tilted, backup, fallback = stages(FixedDetector("cascade", [ONE, OTHER]))
    found = finder.find(blank())
    assert {face.box for face in found} == {ONE[0], OTHER[0], TILTED[0]}
    assert (tilted.calls, backup.calls, fallback.calls) == (1, 0, 0)


def test_no_upright_face_brings_in_the_tilted_pass_first() -> None:
    finder, tilted, backup, fallback = stages(FixedDetector("cascade"))
    (face,) = finder.find(blank())
    assert face.detector == "cascade-tilted"
    assert (tilted.calls, backup.calls, fallback.calls) == (1, 0, 0)


def test_a_hint_away_from_a_lone_face_brings_in_the_tilted_pass() -> None:
    primary = HintedDetector("cascade", [ONE], hints=[ONE[0], Box(20, 160, 60, 60)])
    finder, tilted, _, _ = stages(primary)
    found = finder.find(blank())
    assert tilted.calls == 1
    assert {face.box for face in found} == {ONE[0], TILTED[0]}


def test_a_hint_on_the_lone_face_itself_changes_nothing() -> None:
    primary = HintedDetector("cascade", [ONE], hints=[Box(105, 95, 90, 95)])
    finder, tilted, _, _ = stages(primary)
    finder.find(blank())
    assert tilted.calls == 0


@pytest.mark.parametrize(
    ("faces", "hints", "alone"),
    [
        ([ONE], [], True),
        ([ONE], [ONE[0]], True),
        ([ONE], [Box(300, 200, 40, 40)], False),
        ([], [], False),
        ([ONE, OTHER], [], False),
    ],
)
def test_is_one_face_alone(faces: list[tuple[Box, float]], hints: list[Box], alone: bool) -> None:
    assert is_one_face_alone([Face(b, "cascade", c) for b, c in faces], hints) is alone


def test_the_cascade_reports_hints() -> None:
    assert isinstance(CascadeDetector(CASCADE), HintingDetector)
    assert not isinstance(FixedDetector("x"), HintingDetector)


def test_a_face_both_passes_find_is_one_face_named_by_both() -> None:
    tilted_same = [(Box(104, 96, 100, 100), 0.9)]
    finder, _, _, _ = stages(FixedDetector("cascade", [ONE, OTHER]), tilted_same)
    found = finder.find(blank())
    assert sorted(face.detector for face in found) == ["cascade", "cascade+cascade-tilted"]


def test_backups_answer_when_no_pass_finds_anything() -> None:
    primary = FixedDetector("cascade")
    backups = [
        FixedDetector("animeface", [(Box(10, 10, 50, 50), 0.9)]),
        FixedDetector("cascade-relaxed", [(Box(200, 100, 60, 60), 0.4)]),
    ]
    tilted = FixedDetector("cascade-tilted")
    fallback = FixedDetector("none", [(Box(0, 0, 10, 10), 0.0)])
    found = FaceFinder([primary], backups, fallback, tilted=[tilted]).find(blank())
    assert sorted(face.detector for face in found) == ["animeface", "cascade-relaxed"]
    assert (primary.calls, tilted.calls, fallback.calls) == (1, 1, 0)


def test_the_picture_as_a_whole_answers_when_no_detector_finds_a_face() -> None:
    finder = FaceFinder(
        [FixedDetector("cascade")],
        [FixedDetector("animeface")],
        NoFace(),
        tilted=[FixedDetector("cascade-tilted")],
    )
    (face,) = finder.find(blank(400, 300))
    assert face == NoFace().detect(blank(400, 300))[0]


def test_without_a_fallback_a_picture_may_have_no_face() -> None:
    assert FaceFinder([FixedDetector("cascade")]).find(blank()) == []


def test_finder_needs_at_least_one_detector() -> None:
    with pytest.raises(DetectorConfigError, match="no face detector"):
        FaceFinder([])


def test_describe_names_every_stage_and_the_doubtful_rule() -> None:
    finder = default_face_finder(CASCADE)
    described = finder.describe()
    assert described.count("('name', 'cascade-tilted')") == 2
    assert "('angle', 30)" in described and "('angle', -30)" in described
    assert "Doubtful(" in described
    assert described != default_face_finder(None).describe()


# ---------------------------------------------------------------------------------------------
# Doubtful boxes in pictures with several faces
# ---------------------------------------------------------------------------------------------


def test_a_small_weak_box_one_detector_found_is_dropped_beside_larger_faces() -> None:
    large = Face(Box(0, 0, 100, 100), "cascade+cascade-tilted", 1.0)
    weak_small = Face(Box(200, 0, 50, 50), "cascade", 0.44)
    assert Doubtful().drop([large, weak_small]) == [large]


@pytest.mark.parametrize(
    "kept",
    [
        Face(Box(200, 0, 50, 50), "cascade+cascade-tilted", 0.44),  # two detectors agree
        Face(Box(200, 0, 50, 50), "cascade", 0.56),  # enough hits
        Face(Box(200, 0, 75, 75), "cascade", 0.44),  # nearly as large as the largest
    ],
    ids=["confirmed", "confident", "not small"],
)
def test_other_boxes_are_kept(kept: Face) -> None:
    large = Face(Box(0, 0, 100, 100), "cascade", 1.0)
    assert Doubtful().drop([large, kept]) == [large, kept]


def test_a_lone_weak_face_is_never_dropped() -> None:
    weak = Face(Box(200, 0, 10, 10), "cascade", 0.1)
    assert Doubtful().drop([weak]) == [weak]


def test_the_finder_drops_doubtful_boxes() -> None:
    primary = FixedDetector("cascade", [(Box(0, 0, 100, 100), 1.0), (Box(200, 0, 40, 40), 0.4)])
    found = FaceFinder([primary], doubtful=Doubtful()).find(blank())
    assert [face.box for face in found] == [Box(0, 0, 100, 100)]


# ---------------------------------------------------------------------------------------------
# Resizing and turning the picture for the cascade
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "side", "expected_shape"),
    [((300, 400, 3), 200, (150, 200, 3)), ((190, 270, 3), 320, (225, 320, 3))],
    ids=["down", "up"],
)
def test_resize_to_scales_either_way(
    shape: tuple[int, int, int], side: int, expected_shape: tuple[int, int, int]
) -> None:
    resized, factor = resize_to(np.zeros(shape, np.uint8), side)
    assert resized.shape == expected_shape
    assert factor == pytest.approx(side / max(shape))


@pytest.mark.parametrize("angle", [30, -30, 90, 180])
def test_rotate_expanded_keeps_every_pixel_and_maps_points_back(angle: float) -> None:
    picture = np.zeros((120, 200), np.uint8)
    picture[30:34, 150:154] = 255  # a bright dot centred at (152, 32)
    turned, back = rotate_expanded(picture, angle)
    height, width = turned.shape
    turns = np.radians(angle)
    assert width == pytest.approx(abs(200 * np.cos(turns)) + abs(120 * np.sin(turns)), abs=1)
    assert height == pytest.approx(abs(200 * np.sin(turns)) + abs(120 * np.cos(turns)), abs=1)
    ys, xs = np.nonzero(turned > 128)
    x, y = back @ np.array([xs.mean() + 0.5, ys.mean() + 0.5, 1.0])
    assert (x, y) == (pytest.approx(152, abs=1.5), pytest.approx(32, abs=1.5))


@requires_seed_picture
def test_a_turned_cascade_finds_a_tilted_face_and_maps_its_box_back() -> None:
    pixels = seed_pixels()
    # The known face turned 30° clockwise, on a larger canvas: the turned cascade undoes it.
    tilted, back = rotate_expanded(pixels, -30)
    forward = cv2.invertAffineTransform(back)
    cx, cy = forward @ np.array([*Box(266, 86, 239, 239).center, 1.0])
    detector = CascadeDetector(CASCADE).rotated(30)
    assert (detector.angle, detector.name) == (30, "cascade@30")
    faces = detector.detect(tilted)
    assert faces, "the cascade turned by 30° found no face on a face tilted by 30°"
    best = min(faces, key=lambda f: abs(f.box.center[0] - cx) + abs(f.box.center[1] - cy))
    assert best.box.center == (pytest.approx(cx, abs=25), pytest.approx(cy, abs=25))
    assert 150 <= best.box.w <= 330  # the face's size, not the turned canvas's


def test_rotated_keeps_the_settings_and_the_original_unchanged() -> None:
    upright = CascadeDetector(CASCADE, detect_side=256, scale_factor=1.1)
    turned = upright.rotated(-30, "cascade-tilted")
    assert (turned.angle, turned.name, turned.detect_side, turned.scale_factor) == (
        -30,
        "cascade-tilted",
        256,
        1.1,
    )
    assert (upright.angle, upright.name) == (0.0, "cascade")


# ---------------------------------------------------------------------------------------------
# The default finder
# ---------------------------------------------------------------------------------------------


def test_default_finder_without_cascade_uses_animeface_then_the_whole_picture() -> None:
    finder = default_face_finder(None)
    assert [(d.name, vars(d)["detect_side"]) for d in finder.primary] == [("animeface", 448)]
    assert finder.tilted == ()
    assert [(d.name, vars(d)["detect_side"]) for d in finder.backups] == [("animeface", 288)]
    assert isinstance(finder.fallback, NoFace)


def test_default_finder_with_cascade_backs_it_up_with_animeface() -> None:
    finder = default_face_finder(CASCADE)
    assert [d.name for d in finder.primary] == ["cascade"]
    assert [d.name for d in finder.tilted] == ["cascade-tilted", "cascade-tilted"]
    assert [d.name for d in finder.backups] == ["animeface", "cascade-relaxed"]
    assert isinstance(finder.fallback, NoFace)


def test_default_finder_finds_a_drawn_face() -> None:
    picture = character_picture(CHARACTERS[2], np.random.default_rng(3))
    faces = default_face_finder(None).find(picture)
    assert faces[0].detector == "animeface"
    assert faces[0].box.iou(Box(64, 64, 128, 128)) > 0.3


@pytest.mark.parametrize("with_cascade", [False, True], ids=["animeface", "cascade"])
def test_default_finder_says_none_on_a_picture_without_a_face(with_cascade: bool) -> None:
    (face,) = default_face_finder(CASCADE if with_cascade else None).find(blank())
    assert face == Face(Box(110, 24, 180, 180), "none", 0.0)


# ---------------------------------------------------------------------------------------------
# Recall on a group picture made of seed faces
# ---------------------------------------------------------------------------------------------

GROUP_SOURCES = [
    ("nishikino_maki", 0),
    ("sakurauchi_riko", 0),
    ("takimoto_hifumi", 0),
    ("nishikino_maki", 5),
    ("sakurauchi_riko", 5),
]
"""Which seed pictures lend a face (character folder, index in sorted order)."""
GROUP_FACE_SIDES = [150, 96, 132, 84, 120]
"""How wide each face is drawn on the 1000×450 group picture: as in real group pictures."""
GROUP_FACE_TILTS = [0, 0, -30, 0, 30]
"""How far each face is turned (degrees anticlockwise): heads lean in group pictures."""


def seed_face(folder: str, index: int) -> tuple[np.ndarray, Box]:
    """A seed picture cut around its one face (1.8× the box), and the face's box in the cut."""
    path = sorted((SEED_TRAIN / folder).iterdir())[index]
    pixels = decode_image(path.read_bytes()).pixels
    (face,) = CascadeDetector(CASCADE).detect(pixels)
    height, width = pixels.shape[:2]
    cut = Box(
        round(face.box.x - 0.4 * face.box.w),
        round(face.box.y - 0.4 * face.box.h),
        round(1.8 * face.box.w),
        round(1.8 * face.box.h),
    ).clipped(width, height)
    inside = Box(face.box.x - cut.x, face.box.y - cut.y, face.box.w, face.box.h)
    return pixels[cut.y : cut.y + cut.h, cut.x : cut.x + cut.w], inside


def group_picture() -> tuple[np.ndarray, list[Box]]:
    """Seed faces side by side at different sizes on one 1000×450 canvas (a 200 px wide slot
    each, the face's centre at the slot's centre, alternately higher and lower), and where
    each face is."""
    canvas = np.full((450, 1000, 3), 235, np.uint8)
    boxes = []
    for slot, ((folder, index), side, tilt) in enumerate(
        zip(GROUP_SOURCES, GROUP_FACE_SIDES, GROUP_FACE_TILTS, strict=True)
    ):
        cut, face = seed_face(folder, index)
        factor = side / face.w
        size = (round(cut.shape[1] * factor), round(cut.shape[0] * factor))
        scaled = cv2.resize(cut, size, interpolation=cv2.INTER_AREA)
        face = face.scaled(factor)
        if tilt:  # turned on a larger cut; the face keeps its size around its new centre
            scaled, back = rotate_expanded(scaled, tilt)
            cx, cy = cv2.invertAffineTransform(back) @ np.array([*face.center, 1.0])
            face = Box(round(cx - face.w / 2), round(cy - face.h / 2), face.w, face.h)
            size = (scaled.shape[1], scaled.shape[0])
        # Where the scaled cut's top-left corner lands on the canvas.
        left = 200 * slot + 100 - round(face.center[0])
        top = (150 if slot % 2 else 200) - round(face.center[1])
        x0, y0 = max(left, 200 * slot), max(top, 0)
        x1, y1 = min(left + size[0], 200 * (slot + 1)), min(top + size[1], 450)
        canvas[y0:y1, x0:x1] = scaled[y0 - top : y1 - top, x0 - left : x1 - left]
        boxes.append(Box(face.x + left, face.y + top, face.w, face.h))
    return canvas, boxes


requires_seed_faces = pytest.mark.skipif(
    not all((SEED_TRAIN / folder).is_dir() for folder, _ in GROUP_SOURCES),
    reason=f"the shared seed pictures are absent ({SEED_TRAIN})",
)


@requires_seed_faces
def test_every_face_of_a_group_picture_is_found() -> None:
    picture, expected = group_picture()
    found = default_face_finder(CASCADE).find(picture)
    for box in expected:
        best = max((face.box.iou(box) for face in found), default=0.0)
        assert best >= 0.3, f"the face at {box} was not found: {[f.box for f in found]}"
    assert len(found) <= len(expected) + 1, f"too many boxes: {[f.box for f in found]}"


@requires_seed_faces
def test_large_windows_first_finds_what_one_full_search_finds_in_a_group_picture() -> None:
    """Split into large then small windows, a picture that is not a portrait gets the hits of
    one search over every window size: the same faces and hints, box for box."""
    picture, _ = group_picture()
    full = CascadeDetector(CASCADE).detect_with_hints(picture)
    staged = CascadeDetector(CASCADE, large_first=40).detect_with_hints(picture)
    assert len(full[0]) >= 3

    def ordered(result: tuple[list[Face], list[Box]]) -> tuple[list[str], list[str]]:
        faces, hints = result
        return sorted(map(repr, faces)), sorted(map(repr, hints))  # hits come in another order

    assert ordered(staged) == ordered(full)


@requires_seed_picture
def test_large_windows_first_stops_at_a_portraits_one_face() -> None:
    """A portrait's one large face is found by the large windows alone, and the small ones are
    only probed: one detectMultiScale over them at the probe's coarse steps."""
    pixels = seed_pixels()
    (full,) = CascadeDetector(CASCADE).detect(pixels)
    detector = CascadeDetector(CASCADE, large_first=40)
    searches: list[tuple[int, int, float]] = []
    real_hits = detector._hits

    def hits(
        grey: np.ndarray, smallest: int, largest: int = 0, scale_factor: float = 0.0
    ) -> list[list[int]]:
        searches.append((smallest, largest, scale_factor))
        return real_hits(grey, smallest, largest, scale_factor)

    detector._hits = hits  # type: ignore[method-assign]
    (face,) = detector.detect(pixels)
    assert face.box.iou(full.box) > 0.8
    assert searches == [(40, 0, 0.0), (24, 39, PROBE_SCALE)]


@requires_seed_faces
def test_a_small_face_beside_a_large_one_is_still_found_with_large_windows_first() -> None:
    """One large face and a small one (about 100 and 30 px on the detector's 320 px copy):
    the small windows are searched too, and the faces are those of one full search."""
    canvas = np.full((450, 960, 3), 235, np.uint8)
    for (folder, index), side, left in (
        (("nishikino_maki", 0), 300, 40),
        (("sakurauchi_riko", 0), 90, 700),
    ):
        cut, face = seed_face(folder, index)
        factor = side / face.w
        scaled = cv2.resize(cut, (round(cut.shape[1] * factor), round(cut.shape[0] * factor)))
        height, width = min(scaled.shape[0], 450 - 60), min(scaled.shape[1], 960 - left)
        canvas[60 : 60 + height, left : left + width] = scaled[:height, :width]
    full = CascadeDetector(CASCADE).detect(canvas)
    staged = CascadeDetector(CASCADE, large_first=40).detect(canvas)
    assert len(full) == 2
    assert sorted(f.box.as_list() for f in staged) == sorted(f.box.as_list() for f in full)
