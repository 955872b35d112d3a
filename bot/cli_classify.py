"""``python -m bot classify``: name the characters in pictures on disk, streaming results."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from bot.errors import BotError
from bot.vision.recognizer import Recognition, Recognizer


def human_lines(path: str, recognition: Recognition, top: int) -> list[str]:
    """The seed experiment's form: ``nishikino maki (score = 0.99874)`` per label, per face."""
    lines = [f"{path}:"]
    if not recognition.faces:
        lines.append("  no face found")
    for number, face in enumerate(recognition.faces, start=1):
        note = ", not sure" if face.prediction.unsure else ""
        box = ", ".join(str(v) for v in face.box.as_list())
        lines.append(f"  face {number} at [{box}] ({face.detector}{note}):")
        lines.extend(
            f"    {score.label} (score = {score.score:.5f})"
            for score in face.prediction.scores[:top]
        )
    return lines


def classify_paths(
    recognizer: Recognizer,
    paths: Iterable[str],
    *,
    as_json: bool,
    top: int,
    out: TextIO = sys.stdout,
) -> int:
    """Classify each path in order, printing as it goes; returns how many could not be read."""
    failures = 0
    for path in paths:
        started = time.perf_counter()
        error: str | None = None
        try:
            recognition = recognizer.recognize_bytes(Path(path).read_bytes())
        except BotError as exc:
            failures += 1
            error = exc.user_message
        except OSError as exc:
            failures += 1
            error = f"cannot read the file: {exc.strerror or exc}"
        if as_json:
            if error is not None:
                record: dict[str, object] = {"image": path, "error": error}
            else:
                record = {
                    "image": path,
                    "faces": [face.to_json() for face in recognition.faces],
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                }
            out.write(json.dumps(record) + "\n")
        elif error is not None:
            out.write(f"{path}: error: {error}\n")
        else:
            out.write("\n".join(human_lines(path, recognition, top)) + "\n")
        out.flush()
    return failures
