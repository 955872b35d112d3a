"""A retraining as a person follows it: which stage, how far, and about how long is left.

The trainer prints one JSON line per step when run with ``--progress-json`` (see
``trainer.progress``); :func:`parse_step` reads them and :class:`ProgressBoard` turns them,
and the bot's own steps around them, into a few lines of text. Raw trainer output never
reaches a person. A board follows a plan: the stages one kind of training goes through and
their share of its time (:data:`TRAINER_PLAN` for the command-line trainer,
:data:`REFIT_PLAN` for a server's ``/retrain``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bot.i18n import ENGLISH, Texts
from bot.phrases import Phrase

STAGES: dict[str, str] = {
    "faces": "Finding the faces",
    "embedding": "Reading the faces",
    "fine-tuning": "Fine-tuning",
    "validation": "Training and testing the model",
    "export": "Exporting the model",
    "writing": "Writing the model",
    "checking": "Comparing it with the current model",
}
"""Every stage, in order, and what a person reads for it."""
TRAINER_PLAN: dict[str, float] = {
    "faces": 30.0,
    "embedding": 25.0,
    "fine-tuning": 25.0,
    "validation": 6.0,
    "export": 6.0,
    "writing": 2.0,
}
"""The command-line trainer's stages and their rough share of its time."""
REFIT_PLAN: dict[str, float] = {"embedding": 45.0, "validation": 35.0, "checking": 20.0}
"""A server's retraining (``bot.refit``): embedding the new examples (skipped when all are
cached), fitting and cross-validating the head, the gate's comparison; shares measured on
the seed set with a few dozen new pictures."""
BAR_CELLS = 12
MIN_FRACTION_FOR_ESTIMATE = 0.05
SHORT_WAIT = 5.0
"""Seconds left below which no number is given."""
NEARLY_DONE = 0.9


@dataclass(frozen=True)
class Step:
    """``done`` of ``total`` steps of ``stage`` (one of :data:`STAGES`) are finished."""

    stage: str
    done: int
    total: int


def parse_step(line: str) -> Step | None:
    """A trainer progress line (``{"stage": ..., "done": ..., "total": ...}``), or None for
    anything else."""
    try:
        data = json.loads(line)
        step = Step(str(data["stage"]), int(data["done"]), max(int(data["total"]), 1))
    except (ValueError, TypeError, KeyError):
        return None
    return step if step.stage in STAGES else None


def duration(seconds: float, texts: Texts = ENGLISH) -> str:
    """``75`` → ``1 min 15 s``; ``20`` → ``20 s``."""
    seconds = max(0, round(seconds))
    minutes, rest = divmod(seconds, 60)
    if minutes == 0:
        return texts("{seconds} s", seconds=rest)
    if rest:
        return texts("{minutes} min {seconds} s", minutes=minutes, seconds=rest)
    return texts("{minutes} min", minutes=minutes)


class ProgressBoard:
    """The state of one retraining and its text: notes from the bot, stages from the trainer."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, plan: Mapping[str, float] = TRAINER_PLAN
    ) -> None:
        self._clock = clock
        self._plan = {stage: plan[stage] for stage in STAGES if stage in plan}
        self._started = clock()
        self._notes: list[str | Phrase] = []
        self._stage: str | None = None
        self._done = 0
        self._total = 1
        self._seen: set[str] = set()

    def note(self, text: str | Phrase) -> None:
        """A sentence to show above the stages (what is trained on, a wait)."""
        self._notes.append(text)

    def advance(self, step: Step) -> bool:
        """Record a step; True when it starts a new stage (worth showing at once). Stages
        that run at once (validation beside export) can report late: the board never moves
        back to an earlier stage. A stage outside the plan is ignored."""
        if step.stage not in self._plan:
            return False
        self._seen.add(step.stage)
        order = list(self._plan)
        if self._stage is not None and order.index(step.stage) < order.index(self._stage):
            return False
        new_stage = step.stage != self._stage
        self._stage, self._done, self._total = step.stage, step.done, step.total
        return new_stage

    @property
    def started(self) -> bool:
        """Whether the training reported any stage yet."""
        return self._stage is not None

    @property
    def fraction(self) -> float:
        """How much of the whole training is done, 0 to 1 (stages weighted by their time)."""
        if self._stage is None:
            return 0.0
        index = list(self._plan).index(self._stage)
        weights = list(self._plan.values())
        done = sum(weights[:index]) + weights[index] * self._done / self._total
        return min(done / sum(weights), 1.0)

    def seconds_left(self) -> float | None:
        """An estimate from the time so far and the fraction done (None this early)."""
        fraction = self.fraction
        if fraction < MIN_FRACTION_FOR_ESTIMATE:
            return None
        elapsed = self._clock() - self._started
        return elapsed * (1 - fraction) / fraction

    def render(self, texts: Texts = ENGLISH) -> str:
        """The notes, a bar with the percent and the time left, and the stages so far, in
        ``texts``' language."""
        lines = [texts(note) for note in self._notes]
        fraction = self.fraction
        filled = round(fraction * BAR_CELLS)
        bar = "▰" * filled + "▱" * (BAR_CELLS - filled)
        status = f"{bar} {fraction * 100:.0f}%"
        left = self.seconds_left()
        if left is not None:
            if left >= SHORT_WAIT:
                status += " · " + texts("about {duration} left", duration=duration(left, texts))
            elif fraction >= NEARLY_DONE:
                status += " · " + texts("almost done")
            else:  # a fast run: "almost done" at half way would read oddly
                status += " · " + texts("a few seconds left")
        lines.append(status)
        if self._stage is not None:
            current = list(self._plan).index(self._stage)
            for index, name in enumerate(self._plan):
                words = texts(STAGES[name])
                if index < current and name in self._seen:
                    lines.append(f"✓ {words}")
                elif index == current:
                    count = f" ({self._done}/{self._total})" if self._total > 1 else ""
                    lines.append(f"▸ **{words}**{count}")
        return "\n".join(lines)
