"""Hostile and broken input, through the engine and through the bot (issue 5)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.pictures import tiny_training_run

_served: dict[Path, Path] = {}


def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's tiny trained bundle (one training, shared with tests/vision), copied
    once into a directory named after its version, as ``ModelStore`` expects."""
    base = tmp_path_factory.getbasetemp()
    if base not in _served:
        trained = tiny_training_run(tmp_path_factory).bundle
        version = json.loads((trained / "model.json").read_text("utf-8"))["version"]
        target = tmp_path_factory.mktemp("tiny-bundle") / version
        shutil.copytree(trained, target)
        _served[base] = target
    return _served[base]
