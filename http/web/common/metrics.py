"""Prometheus metrics of every HTTP server: requests counted per route and status.

Workers count into prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, which the service's supervisor sets and wipes at
start). ``GET /metrics`` merges those files and adds whatever the service
reports at scrape time (an async ``collect()`` returning metric families).
Families carry the service's name: ``<service>_http_requests_total``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["RequestMetrics", "MetricsResource", "metrics_enabled", "LATENCY_BUCKETS_S"]

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def metrics_enabled() -> bool:
    """True in a worker whose supervisor made a multiprocess metrics directory."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class RequestMetrics:
    """Falcon middleware: a counter and a latency histogram per route and status."""

    def __init__(self, service: str, port_role: str):
        # NOTE: imported here, after the worker has its environment: prometheus_client
        # picks multiprocess mode from PROMETHEUS_MULTIPROC_DIR at import time.
        from prometheus_client import Counter, Histogram

        self.role = port_role
        self.requests = Counter(
            f"{service}_http_requests",
            "HTTP requests answered",
            ["port", "route", "method", "status"],
        )
        self.latency = Histogram(
            f"{service}_http_request_seconds",
            "HTTP request latency",
            ["port", "route"],
            buckets=LATENCY_BUCKETS_S,
        )
        self._children: dict[tuple, tuple] = {}  # (route, method, status) -> (count, time)

    async def process_request(self, req, resp):
        req.context.started = time.perf_counter()

    async def process_response(self, req, resp, resource, req_succeeded):
        started = getattr(req.context, "started", None)
        if started is None:
            return
        key = (req.uri_template or "unmatched", req.method, resp.status_code)
        children = self._children.get(key)
        if children is None:
            route, method, status = key
            children = self._children[key] = (
                self.requests.labels(self.role, route, method, str(status)),
                self.latency.labels(self.role, route),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


class _Snapshot:
    """A collector of values fetched for one scrape."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


class MetricsResource:
    """GET /metrics in the Prometheus text format."""

    def __init__(self, collect: Callable[[], Awaitable[list]] | None = None):
        self.collect = collect

    async def on_get(self, req, resp):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        if metrics_enabled():
            multiprocess.MultiProcessCollector(registry)
        if self.collect is not None:
            registry.register(_Snapshot(await self.collect()))
        resp.data = generate_latest(registry)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.status = falcon.HTTP_200
