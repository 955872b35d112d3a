"""A retraining as a person follows it (bot.training_progress)."""

from __future__ import annotations

import pytest

from bot.training_progress import REFIT_PLAN, ProgressBoard, Step, duration, parse_step


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("line", "step"),
    [
        ('{"stage": "faces", "done": 3, "total": 10}\n', Step("faces", 3, 10)),
        ('{"stage": "export", "done": 0, "total": 0}', Step("export", 0, 1)),
        ('{"stage": "dreaming", "done": 1, "total": 2}', None),
        ("WARNING: All log messages before absl::InitializeLog() is called", None),
        ('{"stage": "faces"}', None),
    ],
)
def test_only_the_trainers_progress_lines_are_steps(line: str, step: Step | None) -> None:
    assert parse_step(line) == step


@pytest.mark.parametrize(("seconds", "text"), [(20.2, "20 s"), (60, "1 min"), (75, "1 min 15 s")])
def test_durations_read_as_people_say_them(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_the_board_shows_the_stage_percent_and_time_left() -> None:
    clock = Clock()
    board = ProgressBoard(clock)
    board.note("Training on 30 pictures of 3 characters…")
    board.advance(Step("faces", 30, 30))
    board.advance(Step("embedding", 5, 10))
    clock.now += 60

    text = board.render()

    assert text.splitlines() == [
        "Training on 30 pictures of 3 characters…",
        "▰▰▰▰▰▱▱▱▱▱▱▱ 45% · about 1 min 13 s left",
        "✓ Finding the faces",
        "▸ **Reading the faces** (5/10)",
    ]


def test_a_stage_the_trainer_skipped_is_not_ticked() -> None:
    board = ProgressBoard(Clock())
    board.advance(Step("embedding", 1, 1))
    board.advance(Step("validation", 0, 1))

    assert "Fine-tuning" not in board.render()
    assert "✓ Reading the faces" in board.render()


def test_no_estimate_before_some_progress() -> None:
    board = ProgressBoard(Clock())
    board.advance(Step("faces", 1, 100))
    assert board.seconds_left() is None
    assert "left" not in board.render()


def test_a_stage_reporting_late_does_not_move_the_board_back() -> None:
    board = ProgressBoard(Clock())
    board.advance(Step("export", 0, 1))
    before = board.fraction

    assert board.advance(Step("validation", 1, 1)) is False
    assert board.fraction == before
    assert "✓ Training and testing the model" in board.render()


def test_a_retrains_board_weighs_only_the_stages_a_refit_goes_through() -> None:
    clock = Clock()
    board = ProgressBoard(clock, plan=REFIT_PLAN)
    board.advance(Step("validation", 15, 30))  # every example was embedded already
    clock.now += 30

    assert board.render().splitlines()[-2:] == [
        "▰▰▰▰▰▰▰▰▱▱▱▱ 62% · about 18 s left",
        "▸ **Training and testing the model** (15/30)",
    ]
    assert board.advance(Step("faces", 1, 1)) is False, "a stage outside the plan"


def test_a_fast_run_half_way_says_seconds_are_left_not_almost_done() -> None:
    clock = Clock()
    board = ProgressBoard(clock, plan=REFIT_PLAN)
    board.advance(Step("validation", 0, 30))
    clock.now += 2

    assert "a few seconds left" in board.render()
    board.advance(Step("checking", 9, 10))
    assert "almost done" in board.render()
