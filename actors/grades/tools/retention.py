"""``grades retire`` and the log part of ``grades status``: the replicas holding the log.

Either log keeps every record some live replica's snapshot lacks (the built-in
bus: actors.bus.retention; JetStream: actors.grades.jetstream.retention). These
tools ask the log itself, not the replicas: a replica that is gone cannot answer,
and it is exactly the one an operator needs to see (silent, still holding the
floor or not) and may retire.

::

    log grades: positions 5,678..9,999 kept, 412,345 bytes, floor 6,000
    consumer  position  heard     holds_floor
    replica1     6,000  1 s ago   yes
    replica2     5,000  95 s ago  no
      warning: replica2 silent for 95 s (BUS_RETAIN_SILENT_S=60): it no longer holds
      the log back; `grades retire 2` if it is gone for good
"""

from __future__ import annotations

from typing import Any

from actors.bus.messages import BusRetire, BusStats
from actors.grades.tools.outcome import ToolError
from actors.runtime.client import Client, RemoteError
from actors.runtime.protocol import ErrorCode
from actors.runtime.security import Curve

__all__ = ["consumer_name", "log_state", "render_log", "retire_replica"]

BUS_TIMEOUT_S = 5.0


def consumer_name(replica_id: int) -> str:
    """The name a replica's snapshotter reports under (actors.grades.snapshotter)."""
    return f"replica{replica_id}"


def _jetstream(bus_url: str) -> bool:
    return bus_url.lower().startswith("nats://")


def log_state(bus_url: str, stream: str, silent_s: int, curve_dir: str = "") -> dict[str, Any]:
    """The log's size, first position, floor and consumers (BusStats' shape on both logs).

    Raises:
        ToolError: the log does not answer or has no such stream.
    """
    if _jetstream(bus_url):
        from actors.grades.jetstream import retention

        try:
            return retention.retention_state(bus_url, stream, silent_s)
        except retention.NATS_FAILURES as exc:
            raise ToolError(f"JetStream at {bus_url}: {exc!r}") from exc
    try:
        with Client(bus_url, timeout_s=BUS_TIMEOUT_S, curve=Curve.load(curve_dir)) as bus:
            streams: dict[str, dict[str, Any]] = bus.call(BusStats())["streams"]
    except RemoteError as exc:
        raise ToolError(f"the bus at {bus_url}: {exc}") from exc
    if stream not in streams:
        raise ToolError(f"the bus at {bus_url} has no stream {stream!r}")
    return streams[stream]


def retire_replica(bus_url: str, stream: str, replica_id: int, curve_dir: str = "") -> bool:
    """Remove a replica from the log's retention floor; False if the log did not know it.

    Raises:
        ToolError: the log does not answer.
    """
    consumer = consumer_name(replica_id)
    if _jetstream(bus_url):
        from actors.grades.jetstream import retention

        try:
            return retention.retire(bus_url, stream, consumer)
        except retention.NATS_FAILURES as exc:
            raise ToolError(f"JetStream at {bus_url}: {exc!r}") from exc
    try:
        with Client(bus_url, timeout_s=BUS_TIMEOUT_S, curve=Curve.load(curve_dir)) as bus:
            bus.call(BusRetire(stream, consumer))
    except RemoteError as exc:
        if exc.code == ErrorCode.NOT_FOUND:
            return False
        raise ToolError(f"the bus at {bus_url}: {exc}") from exc
    return True


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def render_log(stream: str, state: dict[str, Any]) -> str:
    """The log section of ``grades status``: a line, a consumer table, warnings."""
    lines = [
        f"log {stream}: positions {state['first']:,}..{max(state['first'], state['records'] - 1):,}"
        f" kept, {state['bytes']:,} bytes, floor {state['retain_floor']:,}"
    ]
    consumers: dict[str, dict[str, Any]] = state.get("consumers") or {}
    if not consumers:
        lines.append("  no replica has reported a snapshot: the log is kept whole")
        return "\n".join(lines)
    rows = [["consumer", "position", "heard", "holds_floor"]] + [
        [
            name,
            f"{c['position']:,}",
            f"{c['silent_s']:,} s ago",
            "yes" if c["holds_floor"] else "no",
        ]
        for name, c in consumers.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3]]
        lines.append("  ".join(cells).rstrip())
    for name, c in consumers.items():
        if not c["holds_floor"]:
            replica = name.removeprefix("replica")
            lines.append(
                f"  warning: {name} silent for {c['silent_s']:,} s (BUS_RETAIN_SILENT_S="
                f"{state['retain_silent_s']}): it no longer holds the log back; "
                f"`grades retire {replica}` if it is gone for good"
            )
    return "\n".join(lines)
