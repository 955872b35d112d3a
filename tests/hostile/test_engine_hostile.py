"""Every corpus entry through the decoder and the recognizer: its expected outcome and nothing
else; afterwards the recognizer still names a good picture, and memory stayed bounded."""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from PIL import GifImagePlugin, Image

from bot.errors import ImageError
from bot.vision.bundle import load_bundle
from bot.vision.decode import DecodedImage, decode_image
from bot.vision.recognizer import Recognizer
from tests.hostile.corpus import (
    MANY_FRAMES,
    Decodes,
    HostileInput,
    Refused,
    corpus_entry,
    corpus_params,
    hostile_corpus,
)
from tests.pictures import CHARACTERS, TINY_LABELS, character_picture, encode

T = TypeVar("T")

REPOSITORY = Path(__file__).resolve().parents[2]
MEMORY_LIMIT_MB = 1024
CORPUS_RUN_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def recognizer(bundle_dir: Path) -> Recognizer:
    """A recognizer on the tiny bundle with the default face detectors."""
    return Recognizer.from_paths(load_bundle(bundle_dir))


def good_picture() -> bytes:
    """A drawn portrait of the first tiny-bundle character."""
    return encode(character_picture(CHARACTERS[0], np.random.default_rng(1), (800, 600)))


def expected_outcome(entry: HostileInput, action: Callable[[bytes], T]) -> T | None:
    """``action(entry.data)``, checking that it raises exactly the expected error, if any."""
    expect = entry.expect
    if isinstance(expect, Decodes):
        return action(entry.data)
    with pytest.raises(ImageError) as caught:
        action(entry.data)
    assert type(caught.value) is expect.error, f"{entry.why}: {caught.value!r}"
    message = caught.value.user_message.lower()
    assert all(word in message for word in expect.words), f"{expect.words} not in {message!r}"
    return None


def assert_decoded_facts(expect: Decodes, decoded: DecodedImage) -> None:
    """Format, size and the colours at the expected places."""
    width, height = expect.size
    assert decoded.format == expect.format
    assert decoded.pixels.dtype == np.uint8
    assert decoded.pixels.shape == (height, width, 3)
    assert decoded.original_size == (expect.original_size or expect.size)
    for fx, fy, colour in expect.colours:
        pixel = decoded.pixels[min(height - 1, int(fy * height)), min(width - 1, int(fx * width))]
        difference = int(np.abs(pixel.astype(int) - colour).max())
        assert difference <= expect.tolerance, f"at ({fx}, {fy}): {pixel.tolist()} not {colour}"


def test_the_corpus_holds_the_promised_inputs() -> None:
    corpus = hostile_corpus()
    decoded = [e for e in corpus if isinstance(e.expect, Decodes)]
    refused = [e.expect.error for e in corpus if isinstance(e.expect, Refused)]
    assert len(corpus) >= 40
    assert decoded and refused
    assert all(issubclass(error, ImageError) and error is not ImageError for error in refused)
    with Image.open(io.BytesIO(corpus_entry("gif_10000_frames").data)) as gif:
        assert gif.n_frames == MANY_FRAMES
    for bomb in ("png_bomb_20000_square", "png_zeros_25_megapixels", "gif_bomb_65535_square"):
        assert len(corpus_entry(bomb).data) < 100_000, bomb


@pytest.mark.parametrize("name", corpus_params())
def test_decoder_gives_the_expected_outcome(name: str) -> None:
    entry = corpus_entry(name)

    decoded = expected_outcome(entry, decode_image)

    if isinstance(entry.expect, Decodes):
        assert decoded is not None
        assert_decoded_facts(entry.expect, decoded)


@pytest.mark.parametrize("name", corpus_params())
def test_recognizer_gives_the_expected_outcome(recognizer: Recognizer, name: str) -> None:
    entry = corpus_entry(name)

    recognition = expected_outcome(entry, recognizer.recognize_bytes)

    if isinstance(entry.expect, Decodes):
        assert recognition is not None
        width, height = entry.expect.original_size or entry.expect.size
        assert (recognition.width, recognition.height) == (width, height)
        assert recognition.model_version == recognizer.bundle.version
        for face in recognition.faces:
            box = face.box
            assert 0 <= box.x <= box.x + box.w <= width
            assert 0 <= box.y <= box.y + box.h <= height


def test_only_the_first_of_10000_gif_frames_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    frames: list[int] = []
    seek = GifImagePlugin.GifImageFile._seek

    def counting_seek(self: GifImagePlugin.GifImageFile, frame: int, *args: Any) -> None:
        frames.append(frame)
        seek(self, frame, *args)

    monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", counting_seek)

    decode_image(corpus_entry("gif_10000_frames").data)

    assert frames == [0]


# -- the whole corpus in one fresh process -------------------------------------------------


def max_rss_mb() -> float:
    """This process's peak resident set so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_whole_corpus(bundle_path: str) -> dict[str, Any]:
    """Run in a fresh process: the corpus through the decoder and the recognizer, then a good
    picture. A fresh process, because ``ru_maxrss`` is a high-water mark that the test
    process (which trained a model) has long passed."""
    recognizer = Recognizer.from_paths(load_bundle(bundle_path))
    corpus = hostile_corpus()
    good = good_picture()
    recognizer.recognize_bytes(good)  # load the model and detectors before measuring
    before = max_rss_mb()
    refused = 0
    for entry in corpus:
        for action in (decode_image, recognizer.recognize_bytes):
            try:
                action(entry.data)
            except ImageError:
                refused += 1
    after = max_rss_mb()
    faces = recognizer.recognize_bytes(good).faces
    return {
        "entries": len(corpus),
        "refused": refused,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "good_picture_label": faces[0].prediction.best.label if faces else None,
    }


# ``ru_maxrss`` survives exec on Linux: a process started by pytest begins with pytest's own
# mark (which has trained a model). A small launcher in between gives a clean one.
MEASURE = (
    "import json, sys\n"
    "from tests.hostile.test_engine_hostile import run_whole_corpus\n"
    "print(json.dumps(run_whole_corpus(sys.argv[1])))\n"
)
LAUNCH = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


@pytest.fixture(scope="module")
def corpus_run(bundle_dir: Path) -> dict[str, Any]:
    """The figures of :func:`run_whole_corpus`, run once in a fresh process."""
    finished = subprocess.run(
        [sys.executable, "-c", LAUNCH, sys.executable, "-c", MEASURE, str(bundle_dir)],
        cwd=REPOSITORY,
        env=os.environ | {"PYTHONPATH": str(REPOSITORY)},
        capture_output=True,
        text=True,
        timeout=CORPUS_RUN_TIMEOUT,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    figures = json.loads(finished.stdout.strip().splitlines()[-1])
    print(f"hostile corpus run: {figures}")
    return figures


def test_recognizer_still_names_a_good_picture_after_the_whole_corpus(
    corpus_run: dict[str, Any],
) -> None:
    assert corpus_run["entries"] == len(hostile_corpus())
    assert corpus_run["good_picture_label"] == TINY_LABELS[0]


def test_peak_memory_of_the_whole_corpus_stays_under_1_gb(corpus_run: dict[str, Any]) -> None:
    increase = corpus_run["rss_after_mb"] - corpus_run["rss_before_mb"]
    assert increase < MEMORY_LIMIT_MB, corpus_run
