"""The trainer's machine-readable progress lines (trainer.progress)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from trainer import progress


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    progress.enable(stream)
    yield stream
    progress.disable()


def printed(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_step_is_one_json_line(lines: io.StringIO) -> None:
    progress.report("faces", 3, 10)
    assert printed(lines) == [{"stage": "faces", "done": 3, "total": 10}]


def test_steps_within_one_percent_print_one_line(lines: io.StringIO) -> None:
    for done in range(0, 1001):
        progress.report("embedding", done, 1000)
    steps = printed(lines)
    assert len(steps) == 101
    assert steps[-1] == {"stage": "embedding", "done": 1000, "total": 1000}


def test_steps_yields_every_item_and_reports_after_each(lines: io.StringIO) -> None:
    assert list(progress.steps("faces", "abc", 3)) == ["a", "b", "c"]
    assert [step["done"] for step in printed(lines)] == [0, 1, 2, 3]


def test_an_unknown_stage_is_refused(lines: io.StringIO) -> None:
    with pytest.raises(ValueError, match="unknown training stage 'typo'"):
        progress.report("typo", 1, 2)


def test_nothing_is_printed_when_not_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    progress.report("faces", 1, 2)
    assert capsys.readouterr().out == ""
