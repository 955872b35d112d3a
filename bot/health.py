"""``/healthz`` and Prometheus ``/metrics`` (prometheus_client) on a local aiohttp endpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OUTCOMES = ("answered", "failed", "busy")


@dataclass(frozen=True)
class LiveState:
    """What ``/metrics`` reads from the running bot on each scrape."""

    queue: Callable[[], int]
    """Pictures waiting or being recognised."""
    model_version: Callable[[], str | None]
    """The serving model's version (None before any)."""
    shards: Callable[[], str]
    """The shards this process runs, ``0,1/4`` style."""


class _LiveStateCollector(Collector):
    """Reports the bot's live state (queue, model, shards) at scrape time."""

    def __init__(self) -> None:
        self.state: LiveState | None = None

    def collect(self) -> Iterator[Metric]:
        state = self.state
        if state is None:
            return
        yield GaugeMetricFamily(
            "animebot_queue_length", "Pictures waiting or being recognised.", value=state.queue()
        )
        yield InfoMetricFamily(
            "animebot_model",
            "The serving model and the shards this process runs.",
            value={"version": state.model_version() or "none", "shards": state.shards()},
        )


class Metrics:
    """The bot's Prometheus metrics, in a registry of its own: two bots in one process (the
    tests run several) count apart, and nothing else in the process shows up in ``/metrics``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._images = Counter(
            "animebot_images", "Pictures handled, by outcome.", ["outcome"], registry=self.registry
        )
        for outcome in OUTCOMES:  # every outcome is exported from the start, at 0
            self._images.labels(outcome)
        self._corrections = Counter(
            "animebot_corrections", "Correction votes recorded.", registry=self.registry
        )
        self._latency = Histogram(
            "animebot_latency_seconds",
            "Time from download to answer.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._live = _LiveStateCollector()
        self.registry.register(self._live)

    def observe(self, seconds: float) -> None:
        """Record one answered picture and its latency."""
        self._images.labels("answered").inc()
        self._latency.observe(seconds)

    def count_failed(self) -> None:
        """Record a picture that could not be answered (bad file, download refused, error)."""
        self._images.labels("failed").inc()

    def count_busy(self) -> None:
        """Record a picture turned away because the recognition queue was full."""
        self._images.labels("busy").inc()

    def count_correction(self) -> None:
        """Record one correction vote."""
        self._corrections.inc()

    def watch(self, state: LiveState) -> None:
        """Report ``state`` on each scrape from now on (a later call replaces it)."""
        self._live.state = state

    def value(self, name: str, **labels: str) -> float:
        """The current value of sample ``name{labels}`` (0 when it has none yet)."""
        return self.registry.get_sample_value(name, labels) or 0.0


def health_app(metrics: Metrics, healthy: Callable[[], tuple[bool, str]]) -> web.Application:
    """The endpoint's routes: ``metrics`` and ``healthy`` are read on each request."""

    async def healthz(_: web.Request) -> web.Response:
        ok, detail = healthy()
        return web.Response(text=detail + "\n", status=200 if ok else 503)

    async def scrape(request: web.Request) -> web.Response:
        # The format the scraper asks for (Prometheus text, or OpenMetrics).
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(metrics.registry), headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", scrape)
    return app
