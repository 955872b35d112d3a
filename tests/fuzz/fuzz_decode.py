"""Coverage-guided fuzzing of the picture decoder with atheris.

Run by ``make fuzz`` (part of ``make test``) for a fixed time budget:

    python tests/fuzz/fuzz_decode.py -max_total_time=20 CORPUS_DIR

The property: for any bytes, ``decode_image`` returns a well-formed RGB picture within the
limits or raises an ``ImageError``; nothing else escapes. A seed corpus of small valid
pictures in every supported format is written to ``CORPUS_DIR`` when it is empty.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from bot.errors import ImageError
    from bot.vision.decode import DecodeLimits, decode_image

import numpy as np
from PIL import Image

LIMITS = DecodeLimits(max_bytes=2 * 1024 * 1024, max_pixels=4_000_000, target_side=512)


def seed_corpus(directory: Path) -> None:
    """Small valid pictures in each format and mode the decoder handles."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
    variants = {
        "rgb.png": (rgb, "PNG"),
        "rgba.png": (rgb.convert("RGBA"), "PNG"),
        "palette.gif": (rgb.convert("P"), "GIF"),
        "grey.jpg": (rgb.convert("L"), "JPEG"),
        "cmyk.jpg": (rgb.convert("CMYK"), "JPEG"),
        "rgb.webp": (rgb, "WEBP"),
        "rgb.bmp": (rgb, "BMP"),
    }
    for name, (picture, fmt) in variants.items():
        buffer = io.BytesIO()
        picture.save(buffer, fmt)
        (directory / name).write_bytes(buffer.getvalue())


def test_one_input(data: bytes) -> None:
    """The fuzzed property."""
    try:
        decoded = decode_image(data, LIMITS)
    except ImageError:
        return
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.size > 0 and pixels.flags.c_contiguous
    assert max(pixels.shape[:2]) <= 512


def main() -> None:
    """Seed the corpus directory named last on the command line, then fuzz."""
    corpus = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    for directory in corpus:
        seed_corpus(Path(directory))
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
