"""Tests for picture bytes → named faces (bot.vision.recognizer) over a real (tiny) bundle."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
import pytest

from bot.errors import (
    CorruptImageError,
    EmptyImageError,
    ImageError,
    ImageTooLargeError,
    UnsupportedImageError,
)
from bot.vision.bundle import ModelBundle, load_bundle
from bot.vision.classifier import Prediction
from bot.vision.decode import DecodeLimits, decode_image
from bot.vision.faces import Face, FaceFinder
from bot.vision.geometry import Box
from bot.vision.recognizer import FaceResult, Recognition, Recognizer
from tests.pictures import (
    CHARACTERS,
    TINY_LABELS,
    TinyRun,
    background,
    character_picture,
    draw_face,
    encode,
    tiny_training_run,
)

MARKER = (255, 0, 255)


@dataclass
class ColourDetector:
    """Finds each square painted in ``MARKER``: a detector whose right answer is known exactly."""

    name: str = "marker"

    def detect(self, image: np.ndarray) -> list[Face]:
        mask = (np.abs(image.astype(int) - MARKER).sum(axis=2) < 60).astype(np.uint8)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return [
            Face(Box(int(x), int(y), int(w), int(h)), self.name, 0.9)
            for x, y, w, h, _ in stats[1:count]
        ]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    return tiny_training_run(tmp_path_factory)


@pytest.fixture(scope="module")
def bundle(run: TinyRun) -> ModelBundle:
    return load_bundle(run.bundle)


@pytest.fixture(scope="module")
def recognizer(bundle: ModelBundle) -> Recognizer:
    return Recognizer.from_paths(bundle)


def marked_picture(width: int, height: int, squares: list[Box]) -> bytes:
    """A plain grey picture with ``MARKER`` squares where ``ColourDetector`` will find them."""
    pixels = np.full((height, width, 3), 140, np.uint8)
    for box in squares:
        pixels[box.y : box.y + box.h, box.x : box.x + box.w] = MARKER
    return encode(pixels)


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width``×``height`` pixels (and holds none): a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


# ---------------------------------------------------------------------------------------------
# Boxes in original-picture coordinates
# ---------------------------------------------------------------------------------------------


def test_boxes_map_back_to_the_original_picture(bundle: ModelBundle) -> None:
    square = Box(2000, 600, 400, 400)
    data = marked_picture(3200, 2400, [square])
    assert decode_image(data).scale == pytest.approx(0.32)  # decoded at 1024×768
    recognition = Recognizer(bundle, FaceFinder([ColourDetector()])).recognize_bytes(data)
    assert (recognition.width, recognition.height) == (3200, 2400)
    (face,) = recognition.faces
    assert face.detector == "marker"
    assert abs(face.box.x - square.x) <= 4 and abs(face.box.y - square.y) <= 4
    assert abs(face.box.w - square.w) <= 4 and abs(face.box.h - square.h) <= 4


def test_a_box_at_the_edge_stays_inside_the_original_picture(bundle: ModelBundle) -> None:
    data = marked_picture(3001, 1999, [Box(2801, 1799, 200, 200)])
    (face,) = Recognizer(bundle, FaceFinder([ColourDetector()])).recognize_bytes(data).faces
    assert face.box.x + face.box.w <= 3001 and face.box.y + face.box.h <= 1999


@pytest.mark.parametrize(("width", "height"), [(2400, 1800), (3001, 20), (20, 3001), (1, 1)])
def test_default_detectors_give_boxes_inside_the_original_picture(
    recognizer: Recognizer, width: int, height: int
) -> None:
    pixels = character_picture(CHARACTERS[0], np.random.default_rng(1), size=(width, height))
    recognition = recognizer.recognize_bytes(encode(pixels))
    assert recognition.faces
    for face in recognition.faces:
        box = face.box
        assert box.w >= 1 and box.h >= 1
        assert box.x >= 0 and box.x + box.w <= width
        assert box.y >= 0 and box.y + box.h <= height


# ---------------------------------------------------------------------------------------------
# Naming faces
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("character", [0, 1, 2])
def test_a_large_picture_of_a_drawn_character_is_named(
    recognizer: Recognizer, character: int
) -> None:
    pixels = character_picture(CHARACTERS[character], np.random.default_rng(1), (2400, 1800))
    recognition = recognizer.recognize_bytes(encode(pixels, "JPEG", quality=90))
    assert recognition.faces[0].detector == "animeface"
    assert recognition.faces[0].prediction.best.label == TINY_LABELS[character]


@pytest.mark.parametrize(("left", "right"), [(0, 2), (2, 0)])
def test_each_face_of_a_group_picture_is_named(
    recognizer: Recognizer, left: int, right: int
) -> None:
    pixels = background(500, 1000, np.random.default_rng(2))
    draw_face(pixels, CHARACTERS[left], (270, 275), 120)
    draw_face(pixels, CHARACTERS[right], (750, 275), 100)
    faces = sorted(recognizer.recognize_bytes(encode(pixels)).faces, key=lambda f: f.box.x)
    assert [face.detector for face in faces] == ["animeface", "animeface"]
    assert [face.prediction.best.label for face in faces] == [
        TINY_LABELS[left],
        TINY_LABELS[right],
    ]


def test_a_recognition_records_the_model_version_and_time(
    recognizer: Recognizer, bundle: ModelBundle
) -> None:
    pixels = character_picture(CHARACTERS[1], np.random.default_rng(3))
    recognition = recognizer.recognize_bytes(encode(pixels))
    assert recognition.model_version == bundle.version
    assert 0 < recognition.seconds < 60


def test_face_results_keep_the_views_that_were_classified(
    recognizer: Recognizer, bundle: ModelBundle
) -> None:
    pixels = character_picture(CHARACTERS[1], np.random.default_rng(3))
    face = recognizer.recognize_bytes(encode(pixels)).faces[0]
    size = bundle.crop.size
    assert face.views.shape == (len(bundle.crop.margins), size, size, 3)
    assert face.views.dtype == np.uint8
    assert face.prediction == recognizer.classifier.classify(face.views)


def test_face_result_json_is_the_classify_contract(recognizer: Recognizer) -> None:
    pixels = character_picture(CHARACTERS[2], np.random.default_rng(3))
    face = recognizer.recognize_bytes(encode(pixels)).faces[0]
    record = face.to_json()
    assert record["box"] == face.box.as_list()
    assert record["detector"] == face.detector
    assert record["unsure"] is face.prediction.unsure
    assert record["scores"] == [
        {"label": s.label, "score": s.score} for s in face.prediction.scores
    ]


def test_faces_are_capped_at_max_faces(bundle: ModelBundle) -> None:
    squares = [Box(20 + 60 * i, 20 + 60 * j, 40, 40) for i in range(4) for j in range(3)]
    data = marked_picture(300, 220, squares)
    recognizer = Recognizer(bundle, FaceFinder([ColourDetector()]), max_faces=5)
    assert len(recognizer.recognize_bytes(data).faces) == 5


def test_a_picture_without_a_face_gives_no_faces_when_there_is_no_fallback(
    bundle: ModelBundle,
) -> None:
    data = marked_picture(200, 100, [])
    assert Recognizer(bundle, FaceFinder([ColourDetector()])).recognize_bytes(data).faces == ()


def test_recognize_takes_an_already_decoded_picture(recognizer: Recognizer) -> None:
    pixels = character_picture(CHARACTERS[0], np.random.default_rng(3))
    recognition = recognizer.recognize(decode_image(encode(pixels)))
    assert recognition.faces[0].prediction.best.label == "char a"


def test_the_recognizer_applies_its_decode_limits(bundle: ModelBundle) -> None:
    limits = DecodeLimits(max_pixels=10_000)
    recognizer = Recognizer(bundle, FaceFinder([ColourDetector()]), limits)
    with pytest.raises(ImageTooLargeError):
        recognizer.recognize_bytes(marked_picture(200, 100, []))


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def truncated_jpeg() -> bytes:
    data = encode(character_picture(CHARACTERS[0], np.random.default_rng(4)), "JPEG")
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"", EmptyImageError, id="zero bytes"),
        pytest.param(b"just some text, renamed .png\n", UnsupportedImageError, id="text"),
        pytest.param(truncated_jpeg(), CorruptImageError, id="truncated jpeg"),
        pytest.param(png_header(30_000, 30_000), ImageTooLargeError, id="30000x30000 png header"),
    ],
)
def test_bad_bytes_raise_a_specific_image_error(
    recognizer: Recognizer, data: bytes, error: type[ImageError]
) -> None:
    with pytest.raises(error) as raised:
        recognizer.recognize_bytes(data)
    assert raised.value.user_message


def test_the_recognizer_still_works_after_bad_input(recognizer: Recognizer) -> None:
    with pytest.raises(ImageError):
        recognizer.recognize_bytes(b"")
    pixels = character_picture(CHARACTERS[1], np.random.default_rng(3))
    assert recognizer.recognize_bytes(encode(pixels)).faces[0].prediction.best.label == "char b"


@pytest.mark.parametrize(
    ("detector", "detected"),
    [
        ("cascade", True),
        ("animeface", True),
        ("cascade+animeface", True),
        ("cascade-relaxed", True),
        ("none", False),
    ],
)
def test_only_a_detectors_face_counts_as_detected(detector: str, detected: bool) -> None:
    face = FaceResult(Box(0, 0, 10, 10), detector, Prediction((), True, 0.0), np.zeros(0))

    assert face.is_detected is detected


def test_detected_faces_leave_out_the_stand_in_box() -> None:
    def face(detector: str) -> FaceResult:
        return FaceResult(Box(0, 0, 10, 10), detector, Prediction((), True, 0.0), np.zeros(0))

    found = Recognition((face("cascade"), face("animeface")), 10, 10, 0.0, "v1")
    blank = Recognition((face("none"),), 10, 10, 0.0, "v1")

    assert found.detected_faces == found.faces
    assert blank.detected_faces == ()
