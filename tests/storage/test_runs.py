"""Training runs: recorded from start to finish."""

from __future__ import annotations

import pytest

from bot.storage import RunStatus, Storage


async def test_a_training_run_from_start_to_finish(storage: Storage) -> None:
    run_id = await storage.runs.start(guild_id=1, requested_by=2)
    started = await storage.runs.get(run_id, 1)
    assert await storage.runs.get(run_id, 3) is None  # not from another server
    assert started is not None and started.status is RunStatus.RUNNING

    finished = await storage.runs.finish(
        run_id,
        RunStatus.REJECTED,
        message="the candidate is worse",
        candidate_version="v2",
        metrics={"accuracy": 0.5},
    )

    assert finished.status is RunStatus.REJECTED
    assert finished.finished_at is not None and finished.finished_at >= finished.started_at
    assert (finished.candidate_version, finished.metrics) == ("v2", {"accuracy": 0.5})
    assert await storage.runs.latest(1) == finished


async def test_a_run_cannot_finish_as_running(storage: Storage) -> None:
    run_id = await storage.runs.start(guild_id=None, requested_by=None)

    with pytest.raises(ValueError, match="finished run"):
        await storage.runs.finish(run_id, RunStatus.RUNNING)


async def test_the_latest_run_is_the_servers_own(storage: Storage) -> None:
    mine = await storage.runs.start(guild_id=1, requested_by=2)
    await storage.runs.start(guild_id=3, requested_by=4)

    latest = await storage.runs.latest(1)

    assert latest is not None and latest.id == mine
    assert await storage.runs.latest(5) is None
