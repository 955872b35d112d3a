"""``/healthz`` and ``/metrics`` (bot.health) served by a real local aiohttp server, scraped
over HTTP and read with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.health import LATENCY_BUCKETS, LiveState, Metrics, health_app

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@asynccontextmanager
async def serving(
    metrics: Metrics, healthy: Callable[[], tuple[bool, str]] = lambda: (True, "ok")
) -> AsyncIterator[str]:
    """The health app on a free port of 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(health_app(metrics, healthy), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get(
    path: str,
    metrics: Metrics,
    healthy: Callable[[], tuple[bool, str]] = lambda: (True, "ok"),
    accept: str | None = None,
) -> tuple[int, str, str]:
    """One GET of ``path`` from a fresh server: the status, the content type and the body."""
    headers = {"Accept": accept} if accept else {}
    async with (
        serving(metrics, healthy) as base,
        aiohttp.ClientSession() as session,
        session.get(f"{base}{path}", headers=headers) as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


async def samples(metrics: Metrics) -> Samples:
    """Every sample /metrics serves, by name and labels."""
    status, _, text = await get("/metrics", metrics)
    assert status == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


ANSWERED = ("animebot_images_total", frozenset({("outcome", "answered")}))


async def test_every_outcome_is_exported_from_zero() -> None:
    scraped = await samples(Metrics())

    for outcome in ("answered", "failed", "busy"):
        assert scraped[("animebot_images_total", frozenset({("outcome", outcome)}))] == 0
    assert scraped[("animebot_corrections_total", frozenset())] == 0
    assert scraped[("animebot_latency_seconds_count", frozenset())] == 0


@pytest.mark.parametrize(
    ("record", "name", "labels"),
    [
        (Metrics.count_failed, "animebot_images_total", {"outcome": "failed"}),
        (Metrics.count_busy, "animebot_images_total", {"outcome": "busy"}),
        (Metrics.count_correction, "animebot_corrections_total", {}),
        (lambda m: m.observe(0.2), "animebot_images_total", {"outcome": "answered"}),
    ],
    ids=["failed", "busy", "correction", "answered"],
)
async def test_each_event_counts_once_in_its_sample(
    record: Callable[[Metrics], None], name: str, labels: dict[str, str]
) -> None:
    metrics = Metrics()
    record(metrics)
    record(metrics)

    scraped = await samples(metrics)

    assert scraped[(name, frozenset(labels.items()))] == 2
    others = {
        k: v
        for k, v in scraped.items()
        if k[0].endswith("_total") and k != (name, frozenset(labels.items()))
    }
    assert set(others.values()) == {0}


async def test_latency_lands_in_the_right_buckets() -> None:
    metrics = Metrics()
    for seconds in (0.07, 0.3, 3.0, 30.0):
        metrics.observe(seconds)

    scraped = await samples(metrics)

    def bucket(bound: str) -> float:
        return scraped[("animebot_latency_seconds_bucket", frozenset({("le", bound)}))]

    assert [bucket(str(b)) for b in LATENCY_BUCKETS] == [0, 1, 1, 2, 2, 2, 3, 3]
    assert bucket("+Inf") == 4
    assert scraped[("animebot_latency_seconds_count", frozenset())] == 4
    assert scraped[("animebot_latency_seconds_sum", frozenset())] == pytest.approx(33.37)


async def test_queue_model_and_shards_are_read_at_each_scrape() -> None:
    metrics = Metrics()
    queue = [3]
    metrics.watch(
        LiveState(
            queue=lambda: queue[0], model_version=lambda: "20261201-a", shards=lambda: "0,1/4"
        )
    )

    first = await samples(metrics)
    queue[0] = 7
    second = await samples(metrics)

    assert first[("animebot_queue_length", frozenset())] == 3
    assert second[("animebot_queue_length", frozenset())] == 7
    info = frozenset({("version", "20261201-a"), ("shards", "0,1/4")})
    assert second[("animebot_model_info", info)] == 1


async def test_no_model_yet_is_reported_as_none() -> None:
    metrics = Metrics()
    metrics.watch(LiveState(queue=lambda: 0, model_version=lambda: None, shards=lambda: "auto/?"))

    scraped = await samples(metrics)

    assert scraped[("animebot_model_info", frozenset({("version", "none"), ("shards", "auto/?")}))]


async def test_two_bots_in_one_process_count_apart() -> None:
    first, second = Metrics(), Metrics()
    first.observe(0.1)

    assert (await samples(first))[ANSWERED] == 1
    assert (await samples(second))[ANSWERED] == 0


async def test_metrics_speak_the_format_the_scraper_asks_for() -> None:
    _, plain, _ = await get("/metrics", Metrics())
    _, openmetrics, body = await get("/metrics", Metrics(), accept="application/openmetrics-text")

    assert plain.startswith("text/plain; version=0.0.4")
    assert openmetrics.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


@pytest.mark.parametrize(
    ("ready", "status", "text"), [(True, 200, "ok\n"), (False, 503, "starting\n")]
)
async def test_healthz_says_whether_the_bot_is_ready(ready: bool, status: int, text: str) -> None:
    healthy = (lambda: (True, "ok")) if ready else (lambda: (False, "starting"))
    got_status, _, got_text = await get("/healthz", Metrics(), healthy)

    assert (got_status, got_text) == (status, text)
