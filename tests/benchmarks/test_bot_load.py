"""How ``benchmarks/bot_load.py`` turns paired rounds into its throughput figure."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bot_load.py"


@pytest.fixture(scope="module")
def bot_load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bot_load_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_each_round_is_compared_with_the_engine_passes_around_it(bot_load: ModuleType) -> None:
    shares = bot_load.paired_shares([18.0, 20.0], [20.0, 24.0, 26.0])

    assert shares == pytest.approx([18.0 / 22.0, 20.0 / 25.0])


def test_a_round_with_a_lost_reply_counts_as_nothing(bot_load: ModuleType) -> None:
    assert bot_load.paired_shares([None, 20.0], [20.0, 20.0, 20.0]) == [0.0, 1.0]


def test_the_passes_must_bracket_the_rounds(bot_load: ModuleType) -> None:
    with pytest.raises(ValueError, match="one engine pass before each round"):
        bot_load.paired_shares([18.0, 20.0], [20.0, 24.0])


def post(bot_load: ModuleType, round_number: int, posted: float, replied: float | None) -> object:
    replies = [] if replied is None else [type("Reply", (), {"created_at": replied})()]
    return bot_load.Post(0, None, 0, posted, replies=replies, round=round_number)


def test_round_rates_run_from_a_rounds_first_post_to_its_last_reply(
    bot_load: ModuleType,
) -> None:
    outcome = bot_load.Outcome.__new__(bot_load.Outcome)
    outcome.posts = [
        post(bot_load, 0, 10.0, 11.0),
        post(bot_load, 0, 10.5, 12.0),  # 2 posts over 2 s
        post(bot_load, 1, 50.0, 54.0),
        post(bot_load, 1, 50.0, None),  # lost
    ]

    assert outcome.round_rates() == [pytest.approx(1.0), None]
    assert outcome.posting_windows() == pytest.approx(2.0 + 4.0)
