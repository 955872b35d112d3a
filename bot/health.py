"""``/healthz`` and Prometheus-style ``/metrics`` on a local aiohttp endpoint."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)


class Metrics:
    """Counters the bot updates and ``/metrics`` prints."""

    def __init__(self) -> None:
        self.images_handled = 0
        self.images_failed = 0
        self.images_busy = 0
        self.corrections = 0
        self.latency_seconds_sum = 0.0
        self.latency_buckets = dict.fromkeys((0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), 0)

    def observe(self, seconds: float) -> None:
        """Record one answered picture's latency."""
        self.images_handled += 1
        self.latency_seconds_sum += seconds
        for bound in self.latency_buckets:
            if seconds <= bound:
                self.latency_buckets[bound] += 1


def render_metrics(metrics: Metrics, *, queue: int, model_version: str | None, shards: str) -> str:
    """The text exposition format."""
    lines = [
        "# HELP animebot_images_total Pictures handled, by outcome.",
        "# TYPE animebot_images_total counter",
        f'animebot_images_total{{outcome="answered"}} {metrics.images_handled}',
        f'animebot_images_total{{outcome="failed"}} {metrics.images_failed}',
        f'animebot_images_total{{outcome="busy"}} {metrics.images_busy}',
        "# HELP animebot_corrections_total Correction votes recorded.",
        "# TYPE animebot_corrections_total counter",
        f"animebot_corrections_total {metrics.corrections}",
        "# HELP animebot_latency_seconds Time from download to answer.",
        "# TYPE animebot_latency_seconds histogram",
    ]
    for bound, count in metrics.latency_buckets.items():
        lines.append(f'animebot_latency_seconds_bucket{{le="{bound}"}} {count}')
    lines += [
        f'animebot_latency_seconds_bucket{{le="+Inf"}} {metrics.images_handled}',
        f"animebot_latency_seconds_sum {metrics.latency_seconds_sum:.6f}",
        f"animebot_latency_seconds_count {metrics.images_handled}",
        "# HELP animebot_queue_length Pictures waiting or being recognised.",
        "# TYPE animebot_queue_length gauge",
        f"animebot_queue_length {queue}",
        "# HELP animebot_model_info The serving model.",
        "# TYPE animebot_model_info gauge",
        f'animebot_model_info{{version="{model_version or "none"}",shards="{shards}"}} 1',
    ]
    return "\n".join(lines) + "\n"


def health_app(
    metrics_text: Callable[[], str], healthy: Callable[[], tuple[bool, str]]
) -> web.Application:
    """The endpoint's routes; the callables read the live state on each request."""

    async def healthz(_: web.Request) -> web.Response:
        ok, detail = healthy()
        return web.Response(text=detail + "\n", status=200 if ok else 503)

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(text=metrics_text(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app
