"""grades' own metrics, fetched at scrape time from the storage actor and the bus.

Map size, log position, replication lag, restore progress, bus log size and
group-commit latency; HTTP request counts come from web.common.metrics.
"""

from __future__ import annotations

from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric

from actors.bus.messages import BusStats
from actors.grades.messages import Status
from actors.runtime.client import AsyncClient, RemoteError

__all__ = ["SERVICE", "GradesCollector"]

SERVICE = "grades"
"""The prefix of grades' metric families (and of its HTTP ones, per port)."""

SCRAPE_TIMEOUT_S = 1.0


def _replica_families(status: dict[str, Any] | None) -> list[Metric]:
    up = GaugeMetricFamily("grades_storage_up", "1 if the storage actor answered")
    up.add_metric([], 1 if status else 0)
    if not status:
        return [up]
    ready = GaugeMetricFamily("grades_ready", "1 once restored and live", labels=["phase"])
    ready.add_metric([status["phase"]], 1 if status["phase"] == "ready" else 0)
    gauges = [
        ("grades_rows", "records in the map", "rows"),
        ("grades_log_position", "next bus log position to apply", "position"),
        (
            "grades_replication_lag_ms",
            "age of the last remote write when merged",
            "replication_lag_ms",
        ),
        ("grades_restore_rows", "rows loaded from a peer's backup", "restored_rows"),
        ("grades_pending_batches", "write batches awaiting the bus", "pending_batches"),
        ("grades_bus_up", "1 if the broker hears the bus", "bus_up"),
    ]
    families: list[Metric] = [up, ready]
    for name, doc, key in gauges:
        family = GaugeMetricFamily(name, doc)
        family.add_metric([], float(status.get(key) or 0))
        families.append(family)
    for name, doc, key in (
        ("grades_sets_applied", "this replica's writes merged", "sets_applied"),
        ("grades_remote_applied", "other replicas' writes merged", "remote_applied"),
    ):
        counter = CounterMetricFamily(name, doc)
        counter.add_metric([], float(status.get(key) or 0))
        families.append(counter)
    return families


def _bus_families(stats: dict[str, Any] | None) -> list[Metric]:
    if not stats:
        return []
    records = GaugeMetricFamily("grades_bus_log_records", "records in the log", labels=["stream"])
    size = GaugeMetricFamily("grades_bus_log_bytes", "bytes of log segments", labels=["stream"])
    for stream, info in stats["streams"].items():
        records.add_metric([stream], info["records"])
        size.add_metric([stream], info["bytes"])
    fsync = HistogramMetricFamily("grades_bus_fsync_seconds", "group commit (fsync) latency")
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound_ms, count in zip(stats["fsync_buckets_ms"], stats["fsync_bucket_counts"]):
        running += count
        buckets.append((str(bound_ms / 1000), running))
    buckets.append(("+Inf", sum(stats["fsync_bucket_counts"])))
    fsync.add_metric([], buckets, stats["fsync_ms_total"] / 1000)
    return [records, size, fsync]


class GradesCollector:
    """Async collect() for MetricsResource: the storage actor's and the bus's state."""

    def __init__(self, store: AsyncClient, bus: AsyncClient | None):
        self.store = store
        self.bus = bus

    async def _ask(self, client: AsyncClient | None, message: Any) -> Any:
        if client is None:
            return None
        try:
            return await client.call(message, timeout_s=SCRAPE_TIMEOUT_S)
        except RemoteError:
            return None

    async def __call__(self) -> list[Metric]:
        status = await self._ask(self.store, Status())
        stats = await self._ask(self.bus, BusStats())
        return _replica_families(status) + _bus_families(stats)
