"""Prometheus metrics of every HTTP server: requests counted per route and status.

Workers count into prometheus_client's multiprocess files
(PROMETHEUS_MULTIPROC_DIR, which the service's supervisor sets and wipes at
start). ``GET /metrics`` merges those files and adds whatever the service
reports at scrape time (an async ``collect()`` returning metric families).
Families carry the service's name: ``<service>_http_requests_total``; a
service's own families are in ``web/<service>/metrics.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import falcon
import falcon.asgi
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from web.common.pid import current_pid

__all__ = [
    "Collect",
    "QueryGauges",
    "RequestMetrics",
    "MetricsResource",
    "metrics_enabled",
    "request_metrics",
    "LATENCY_BUCKETS_S",
]

Collect = Callable[[], Awaitable[list[Metric]]]
"""A service's scrape-time families: an async callable returning them."""

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def metrics_enabled() -> bool:
    """True in a worker whose supervisor made a multiprocess metrics directory."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def request_metrics(service: str, port_role: str = "http") -> list[RequestMetrics]:
    """The middleware list of a worker: RequestMetrics when metrics are enabled, else none."""
    return [RequestMetrics(service, port_role)] if metrics_enabled() else []


_FAMILIES: dict[str, tuple[Any, Any]] = {}
"""service -> (requests counter, latency histogram): one pair per process, shared by the
apps of a worker that serves several ports (grades), since a registry takes a name once."""


def _request_families(service: str) -> tuple[Any, Any]:
    families = _FAMILIES.get(service)
    if families is None:
        # NOTE: imported here, after the worker has its environment: prometheus_client
        # picks multiprocess mode from PROMETHEUS_MULTIPROC_DIR at import time.
        from prometheus_client import Counter, Histogram, values

        if metrics_enabled():
            # NOTE: multiprocess values check for a fork on every write, with a getpid()
            # system call each (three a request); current_pid() has no system call and
            # still changes in a forked child, the check's whole purpose.
            value_class = values.MultiProcessValue(process_identifier=current_pid)  # type: ignore[no-untyped-call]
            values.ValueClass = value_class

        families = _FAMILIES[service] = (
            Counter(
                f"{service}_http_requests",
                "HTTP requests answered",
                ["port", "route", "method", "status"],
            ),
            Histogram(
                f"{service}_http_request_seconds",
                "HTTP request latency",
                ["port", "route"],
                buckets=LATENCY_BUCKETS_S,
            ),
        )
    return families


class RequestMetrics:
    """Falcon middleware: a counter and a latency histogram per route and status."""

    def __init__(self, service: str, port_role: str):
        self.role = port_role
        self.requests, self.latency = _request_families(service)
        # (route, method, status) -> (count, time)
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def process_request(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        req.context.started = time.perf_counter()

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
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

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


class MetricsResource:
    """GET /metrics in the Prometheus text format."""

    def __init__(self, collect: Collect | None = None):
        self.collect = collect

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        if metrics_enabled():
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        if self.collect is not None:
            registry.register(_Snapshot(await self.collect()))
        resp.data = generate_latest(registry)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.status = falcon.HTTP_200


class QueryGauges:
    """A Collect of gauges read by one database query at scrape time.

    ``query()`` returns one value per gauge of ``gauges`` ((name, help) pairs), in
    order; while the database is unreachable the scrape simply lacks them.
    """

    def __init__(
        self, query: Callable[[], Awaitable[Sequence[float]]], gauges: Sequence[tuple[str, str]]
    ):
        self.query = query
        self.gauges = gauges

    async def __call__(self) -> list[Metric]:
        # NOTE: imported here: asyncpg with it costs a service without a database (grades)
        # ~20 ms of every HTTP master's start.
        from actors.runtime.pg import transient_errors

        try:
            values = await self.query()
        except transient_errors():
            return []
        return [
            GaugeMetricFamily(name, doc, value=value)
            for (name, doc), value in zip(self.gauges, values, strict=True)
        ]
