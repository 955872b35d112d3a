"""A tiny real model bundle for the end-to-end tests, trained once on drawn faces.

The trainer runs in a subprocess, so TensorFlow never enters the test process; the
bundle is then copied into each test's model directory and promoted there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from bot.models import ModelStore
from bot.teaching import teachable_faces
from tests.pictures import CHARACTERS, Character, character_picture, encode, write_dataset

REPOSITORY = Path(__file__).resolve().parents[2]
PICTURES_PER_CHARACTER = 6
TRAINING_TIMEOUT = 180.0
E2E_CHARACTERS = CHARACTERS[:3]


def train_bundle(root: Path, characters: tuple[Character, ...] = E2E_CHARACTERS) -> Path:
    """Draw a small dataset under ``root`` and train a bundle from it; returns the bundle dir.

    The directory is named after the bundle's version, as :class:`ModelStore` expects.
    """
    data = write_dataset(root / "data", PICTURES_PER_CHARACTER, characters=characters)
    out = root / "bundles" / "training"
    command = [
        sys.executable, "-m", "trainer", "train",
        "--data", str(data), "--out", str(out),
        "--repeats", "1", "--folds", "2", "--no-cache", "--quiet",
    ]  # fmt: skip
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    finished = subprocess.run(
        command,
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=TRAINING_TIMEOUT,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(
            f"the trainer failed ({finished.returncode}):\n{finished.stderr[-4000:]}"
        )
    version = json.loads((out / "model.json").read_text("utf-8"))["version"]
    return out.rename(out.parent / version)


def install_bundle(bundle: Path, model_dir: Path, *, promote: bool = True) -> str:
    """Copy ``bundle`` into ``model_dir/bundles/`` (and make it the serving one); its version."""
    store = ModelStore(model_dir)
    shutil.copytree(bundle, store.bundle_path(bundle.name))
    if promote:
        store.promote(bundle.name)
    return bundle.name


def face_png(character: Character = E2E_CHARACTERS[0], seed: int = 1234) -> bytes:
    """A PNG portrait of ``character`` unlike the training pictures (another seed)."""
    return encode(character_picture(character, np.random.default_rng(seed)))


def taught_crops(character: Character, count: int, seed: int = 99) -> list[bytes]:
    """The stored crops of ``count`` drawn portraits of ``character`` in which a detector
    finds the face, as ``/teach`` keeps them (portraits where none does are skipped)."""
    rng = np.random.default_rng(seed)
    crops: list[bytes] = []
    for _ in range(10 * count):
        found = teachable_faces(encode(character_picture(character, rng)), None)
        crops.extend(found.crops[:1])
        if len(crops) == count:
            return crops
    raise AssertionError(f"a detector found only {len(crops)} of {count} faces of {character}")
