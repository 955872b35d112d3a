"""Machine-readable training progress: one JSON line per step, for the bot's ``/retrain``.

``python -m trainer train --progress-json`` turns it on; the training code calls
:func:`report` at each step, whether or not anyone listens (a no-op when off). Lines look
like ``{"stage": "faces", "done": 12, "total": 89}`` and go to stdout, flushed at once, so
a parent process reads them as they come; the trainer's logging goes to stderr.

A module-level sink rather than an object passed through every function: the calls sit
deep in the training code (one line each), and a process trains one model at a time.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")

STAGES = ("faces", "embedding", "fine-tuning", "validation", "export", "writing")
"""The stages a training goes through, in order (a stage may be skipped)."""

_sink: TextIO | None = None
_last: dict[str, int] = {}
_lock = threading.Lock()  # validation and export run in two threads at once


def enable(stream: TextIO | None = None) -> None:
    """Print progress lines to ``stream`` (stdout by default) from now on."""
    global _sink
    _sink = stream if stream is not None else sys.stdout
    _last.clear()


def disable() -> None:
    """Stop printing progress lines."""
    global _sink
    _sink = None


def report(stage: str, done: int, total: int) -> None:
    """``done`` of ``total`` steps of ``stage`` are finished.

    Prints a line only when the whole percent changed since the stage's last line (a stage
    of 10,000 steps prints at most 101 lines). ``stage`` is one of :data:`STAGES`.
    """
    if _sink is None:
        return
    if stage not in STAGES:
        raise ValueError(f"unknown training stage {stage!r}; one of {', '.join(STAGES)}")
    total = max(total, 1)
    done = min(max(done, 0), total)
    percent = done * 100 // total
    with _lock:
        if _last.get(stage) == percent:
            return
        _last[stage] = percent
        _sink.write(json.dumps({"stage": stage, "done": done, "total": total}) + "\n")
        _sink.flush()


def steps(stage: str, items: Iterable[T], total: int) -> Iterator[T]:
    """Yield ``items``, reporting ``stage`` before the first and after each one."""
    report(stage, 0, total)
    for done, item in enumerate(items, start=1):
        yield item
        report(stage, done, total)
