"""Prometheus metrics: HTTP requests of every worker, plus the replica and bus state.

Workers of both ports count requests into prometheus_client's multiprocess
files (PROMETHEUS_MULTIPROC_DIR, which `grades replica` sets and wipes at
start). The getter's ``GET /metrics`` merges those files and adds, at scrape
time, what the storage actor and the bus report: map size, log position,
replication lag, restore progress, bus log size and group-commit latency.
"""

from __future__ import annotations

import os
import time

import falcon
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from actors.client import AsyncClient, RemoteError
from actors.protocol import BusStats, Status

__all__ = ["RequestMetrics", "MetricsResource", "metrics_enabled"]

SCRAPE_TIMEOUT_S = 1.0
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def metrics_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


class RequestMetrics:
    """Falcon middleware: a counter and a latency histogram per route and status."""

    def __init__(self, port_role: str):
        # NOTE: imported here, after the worker has its environment: prometheus_client
        # picks multiprocess mode from PROMETHEUS_MULTIPROC_DIR at import time.
        from prometheus_client import Counter, Histogram
        self.role = port_role
        self.requests = Counter("grades_http_requests", "HTTP requests answered",
                                ["port", "route", "method", "status"])
        self.latency = Histogram("grades_http_request_seconds", "HTTP request latency",
                                 ["port", "route"], buckets=LATENCY_BUCKETS_S)
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
                self.latency.labels(self.role, route))
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


class _Snapshot:
    """A collector of values fetched for one scrape."""

    def __init__(self, families: list):
        self.families = families

    def collect(self):
        return self.families


def _replica_families(status: dict | None) -> list:
    up = GaugeMetricFamily("grades_storage_up", "1 if the storage actor answered")
    up.add_metric([], 1 if status else 0)
    if not status:
        return [up]
    ready = GaugeMetricFamily("grades_ready", "1 once restored and live", labels=["phase"])
    ready.add_metric([status["phase"]], 1 if status["phase"] == "ready" else 0)
    gauges = [
        ("grades_rows", "records in the map", "rows"),
        ("grades_log_position", "next bus log position to apply", "position"),
        ("grades_replication_lag_ms", "age of the last remote write when merged",
         "replication_lag_ms"),
        ("grades_restore_rows", "rows loaded from a peer's backup", "restored_rows"),
        ("grades_pending_batches", "write batches awaiting the bus", "pending_batches"),
        ("grades_bus_up", "1 if the broker hears the bus", "bus_up"),
    ]
    families = [up, ready]
    for name, doc, key in gauges:
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], float(status.get(key) or 0))
        families.append(family)
    for name, doc, key in (("grades_sets_applied", "this replica's writes merged",
                            "sets_applied"),
                           ("grades_remote_applied", "other replicas' writes merged",
                            "remote_applied")):
        family = CounterMetricFamily(name, doc)
        family.add_metric([], float(status.get(key) or 0))
        families.append(family)
    return families


def _bus_families(stats: dict | None) -> list:
    if not stats:
        return []
    records = GaugeMetricFamily("grades_bus_log_records", "records in the log", labels=["stream"])
    size = GaugeMetricFamily("grades_bus_log_bytes", "bytes of log segments", labels=["stream"])
    for stream, info in stats["streams"].items():
        records.add_metric([stream], info["records"])
        size.add_metric([stream], info["bytes"])
    fsync = HistogramMetricFamily("grades_bus_fsync_seconds", "group commit (fsync) latency")
    buckets, running = [], 0
    for bound_ms, count in zip(stats["fsync_buckets_ms"], stats["fsync_bucket_counts"]):
        running += count
        buckets.append((str(bound_ms / 1000), running))
    buckets.append(("+Inf", sum(stats["fsync_bucket_counts"])))
    fsync.add_metric([], buckets, stats["fsync_ms_total"] / 1000)
    return [records, size, fsync]


class MetricsResource:
    """GET /metrics in the Prometheus text format."""

    def __init__(self, store: AsyncClient, bus: AsyncClient | None):
        self.store = store
        self.bus = bus

    async def _ask(self, client: AsyncClient | None, message):
        if client is None:
            return None
        try:
            return await client.call(message, timeout_s=SCRAPE_TIMEOUT_S)
        except RemoteError:
            return None

    async def on_get(self, req, resp):
        from prometheus_client import multiprocess
        registry = CollectorRegistry()
        if metrics_enabled():
            multiprocess.MultiProcessCollector(registry)
        status = await self._ask(self.store, Status())
        stats = await self._ask(self.bus, BusStats())
        registry.register(_Snapshot(_replica_families(status) + _bus_families(stats)))
        resp.data = generate_latest(registry)
        resp.content_type = CONTENT_TYPE_LATEST
        resp.status = falcon.HTTP_200
