"""Synthetic pictures for the vision and trainer tests: drawn anime-ish faces, encoders,
and one tiny real training run on them that several test modules share.

Nothing here reads the shared seed pictures; every picture is drawn from numbers, so
the tests run anywhere and a failure can be reproduced from its seed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

Colour = tuple[int, int, int]

SKIN: Colour = (255, 224, 200)


@dataclass(frozen=True)
class Character:
    """How a drawn character looks: the colours that tell it apart."""

    folder: str
    hair: Colour
    eyes: Colour


CHARACTERS = (
    Character("char_a", hair=(200, 40, 40), eyes=(120, 60, 180)),
    Character("char_b", hair=(240, 200, 90), eyes=(40, 140, 60)),
    Character("char_c", hair=(40, 60, 150), eyes=(220, 120, 30)),
)
"""Three look-alike-in-shape characters that differ in hair and eye colour."""


def background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A varied backdrop: a random two-colour gradient with a little noise."""
    top, bottom = rng.integers(60, 256, size=(2, 3))
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    pixels = top * (1 - ramp) + bottom * ramp
    pixels = np.broadcast_to(pixels, (height, width, 3)) + rng.normal(0, 6, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def draw_face(
    image: np.ndarray, character: Character, centre: tuple[int, int], radius: int
) -> None:
    """Draw one anime-ish face in place: hair behind and above, a skin face, big eyes."""
    cx, cy = centre
    r = radius
    cv2.ellipse(
        image, (cx, cy - r // 5), (int(r * 1.35), int(r * 1.4)), 0, 0, 360, character.hair, -1
    )
    cv2.ellipse(image, (cx, cy + r // 6), (r, int(r * 1.05)), 0, 0, 360, SKIN, -1)
    # Bangs: a band of hair over the forehead.
    cv2.ellipse(image, (cx, cy - r // 2), (int(r * 1.1), r // 2), 0, 180, 360, character.hair, -1)
    cv2.rectangle(image, (cx - r, cy - r // 2), (cx + r, cy - r // 4), character.hair, -1)
    for side in (-1, 1):
        ex, ey = cx + side * int(r * 0.42), cy + r // 6
        cv2.ellipse(image, (ex, ey), (int(r * 0.2), int(r * 0.3)), 0, 0, 360, (255, 255, 255), -1)
        cv2.ellipse(
            image, (ex, ey + r // 20), (int(r * 0.16), int(r * 0.25)), 0, 0, 360, character.eyes, -1
        )
        cv2.circle(image, (ex, ey + r // 20), max(1, r // 14), (20, 20, 30), -1)
        cv2.circle(image, (ex - r // 16, ey - r // 12), max(1, r // 16), (255, 255, 255), -1)
    cv2.ellipse(image, (cx, cy + int(r * 0.7)), (r // 8, r // 20), 0, 0, 180, (180, 60, 70), -1)


def character_picture(
    character: Character,
    rng: np.random.Generator,
    size: tuple[int, int] = (256, 256),
) -> np.ndarray:
    """An ``H×W×3`` uint8 portrait of ``character`` with a random backdrop, position and size."""
    width, height = size
    image = background(height, width, rng)
    side = min(width, height)
    radius = int(side * rng.uniform(0.22, 0.28))
    cx = width // 2 + int(rng.integers(-side // 12, side // 12 + 1))
    cy = int(height * 0.5) + int(rng.integers(-side // 12, side // 12 + 1))
    draw_face(image, character, (cx, cy), radius)
    return image


def encode(pixels: np.ndarray, image_format: str = "PNG", **params: object) -> bytes:
    """``pixels`` (``H×W×3`` uint8 RGB) as picture bytes in ``image_format``."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, image_format, **params)
    return buffer.getvalue()


def write_dataset(
    root: Path,
    per_character: int,
    *,
    characters: tuple[Character, ...] = CHARACTERS,
    seed: int = 0,
) -> Path:
    """``root/<folder>/<n>.png|jpg`` for each character (alternating formats); returns ``root``."""
    rng = np.random.default_rng(seed)
    for character in characters:
        folder = root / character.folder
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_character):
            pixels = character_picture(character, rng)
            if n % 2:
                (folder / f"{n}.jpg").write_bytes(encode(pixels, "JPEG", quality=92))
            else:
                (folder / f"{n}.png").write_bytes(encode(pixels))
    return root


# -------------------------------------------------------------------------------------------
# A tiny trained bundle, shared by the trainer, classifier and recognizer tests
# -------------------------------------------------------------------------------------------

TINY_LABELS = ("char a", "char b", "char c")
"""The labels the tiny bundle learns (from the folders ``char_a``, ``char_b``, ``char_c``)."""
TINY_SKIPPED = {"char_a/notes.png": b"these are notes, not pixels\n", "char_b/empty.jpg": b""}
"""Files in the tiny data folder that are no pictures: training must skip them."""


@dataclass(frozen=True)
class TinyRun:
    """One real training run on drawn characters, and what it used (for the tests to compare)."""

    data: Path
    bundle: Path
    cache: Path
    head: Any
    """The ``bot.vision.head.Head`` fitted on every picture (the one in the bundle, before its
    unsure rule was set)."""
    backbone: Any
    """The Keras backbone the run was built from (ImageNet weights)."""
    split: Any
    """The ``trainer.finetune.SplitBackbone`` the run fine-tuned and exported."""


_tiny_runs: dict[Path, TinyRun] = {}


def tiny_training_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """Train once per test session on 3 drawn characters × 5 pictures (about 15 s).

    The run is remembered per session (keyed by its base temporary directory), so every
    module that needs a real bundle shares one. Tests must not change its files.
    """
    base = tmp_path_factory.getbasetemp()
    if base in _tiny_runs:
        return _tiny_runs[base]
    pytest.importorskip("tensorflow", reason="the trainer extra (TensorFlow) is not installed")
    import trainer.head
    import trainer.train
    from trainer.finetune import FineTuneOptions

    root = tmp_path_factory.mktemp("tiny-run")
    data = write_dataset(root / "data", per_character=5)
    for name, content in TINY_SKIPPED.items():
        (data / name).write_bytes(content)
    heads: list[Any] = []
    backbones: list[Any] = []
    fit_head = trainer.head.fit_head
    build_backbone = trainer.train.build_backbone

    def spy_fit_head(*args: Any, **kwargs: Any) -> Any:
        heads.append(fit_head(*args, **kwargs))
        return heads[-1]

    def spy_build_backbone(*args: Any, **kwargs: Any) -> Any:
        backbones.append(build_backbone(*args, **kwargs))
        return backbones[-1]

    splits: list[Any] = []
    split_backbone = trainer.train.SplitBackbone

    def spy_split_backbone(*args: Any, **kwargs: Any) -> Any:
        splits.append(split_backbone(*args, **kwargs))
        return splits[-1]

    options = trainer.train.TrainOptions(
        data=data,
        out=root / "bundle",
        cache_dir=root / "cache",
        cascade_path=None,
        # A few steps on few copies: the tests check the pipeline, not what fine-tuning buys.
        fine_tune=FineTuneOptions(steps=6, copies=2, batch_size=16),
        progress=False,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trainer.head, "fit_head", spy_fit_head)
        patch.setattr(trainer.train, "build_backbone", spy_build_backbone)
        patch.setattr(trainer.train, "SplitBackbone", spy_split_backbone)
        result = trainer.train.train(options)
    # Calibration fits on part of the faces; the exported head saw all of them.
    final = max(heads, key=lambda head: len(head.gallery))
    run = TinyRun(data, result.bundle, root / "cache", final, backbones[0], splits[0])
    _tiny_runs[base] = run
    return run


def group_picture(
    characters: tuple[Character, ...] = (CHARACTERS[0], CHARACTERS[2]), seed: int = 2
) -> np.ndarray:
    """A ``500×1000`` picture with one face per character, left to right, the first largest
    (the default detectors find both faces of the default pair)."""
    pixels = background(500, 1000, np.random.default_rng(seed))
    for number, character in enumerate(characters):
        draw_face(pixels, character, (270 + 480 * number, 275), 120 - 20 * number)
    return pixels


def blank_picture(size: tuple[int, int] = (400, 300)) -> np.ndarray:
    """A white picture: nothing in it."""
    width, height = size
    return np.full((height, width, 3), 255, np.uint8)


def landscape_picture() -> np.ndarray:
    """A drawn landscape without anyone in it: sky, sun, hills, a tree."""
    sky = np.linspace((120, 170, 240), (220, 235, 250), 300)[:, None, :]
    pixels = np.broadcast_to(sky, (300, 480, 3)).astype(np.uint8).copy()
    cv2.circle(pixels, (390, 70), 35, (255, 220, 90), -1)
    cv2.ellipse(pixels, (150, 320), (260, 120), 0, 180, 360, (70, 150, 70), -1)
    cv2.ellipse(pixels, (420, 330), (220, 110), 0, 180, 360, (50, 120, 60), -1)
    cv2.rectangle(pixels, (300, 170), (312, 230), (90, 60, 30), -1)
    cv2.circle(pixels, (306, 160), 28, (40, 110, 40), -1)
    return pixels
