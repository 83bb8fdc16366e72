"""The bus's messages: producers and consumers <-> the bus, and what it publishes.

Request/reply runs DEALER -> the bus's ROUTER, framed by actors.runtime.protocol.
The bus fans records out over PUB as two frames::

    [topic, body]       topic = stream name + b"\\0" (so "a" does not match "ab")
"""

from __future__ import annotations

from typing import NamedTuple

from actors.runtime import protocol

__all__ = [
    "BusPublish",
    "BusFetch",
    "BusSeek",
    "BusInfo",
    "BusStats",
    "BusRetain",
    "BusRecord",
    "BusHeartbeat",
    "topic_for",
]


# --- broker (or any producer/consumer) <-> bus --------------------------------


class BusPublish(NamedTuple):
    """Append data to a stream; Ok([position, time_ms]) once it is fsynced."""

    TAG = "bus_publish"
    stream: str
    """Log name, e.g. "grades"; created on first use."""
    origin: str
    """Producer id, stored with the record so subscribers can drop their own."""
    seq: int
    """Producer sequence number, stored with the record."""
    data: bytes
    """Opaque payload."""


class BusFetch(NamedTuple):
    """Read durable records; Ok([log_id, end, [[pos, time_ms, origin, seq, data], ...]])."""

    TAG = "bus_fetch"
    stream: str
    """Log name."""
    from_position: int
    """First position wanted."""
    max_records: int
    """Upper bound on records returned."""


class BusSeek(NamedTuple):
    """Position of the first record at or after a time; Ok(position)."""

    TAG = "bus_seek"
    stream: str
    """Log name."""
    time_ms: int
    """Wall-clock ms."""


class BusInfo(NamedTuple):
    """Ok([log_id, end]) of a stream (created if missing)."""

    TAG = "bus_info"
    stream: str
    """Log name."""


class BusStats(NamedTuple):
    """Ok({stream: {...}}): records, bytes on disk and group-commit (fsync) latency."""

    TAG = "bus_stats"


class BusRetain(NamedTuple):
    """A consumer's own snapshot covers the stream below a position; Ok([first, floor]).

    The bus may then delete segments below every consumer's position (see
    actors.bus.retention); first is the oldest position it still keeps.
    """

    TAG = "bus_retain"
    stream: str
    """Log name."""
    consumer: str
    """Stable consumer name, e.g. "replica1"."""
    position: int
    """Every record below it is in the consumer's snapshot."""
    log_id: str
    """The log the position refers to; another log's is refused."""


class BusRecord(NamedTuple):
    """PUB: one durable record of a stream."""

    TAG = "bus_record"
    position: int
    """Dense 0-based position in the stream."""
    time_ms: int
    """When the bus accepted it."""
    origin: str
    """Producer id."""
    seq: int
    """Producer sequence number."""
    data: bytes
    """Opaque payload."""


class BusHeartbeat(NamedTuple):
    """PUB, every HEARTBEAT_MS per stream: liveness and the end, to spot lost records."""

    TAG = "bus_heartbeat"
    log_id: str
    """Identity of the stream's log."""
    end: int
    """Next position to be assigned."""


protocol.register(
    BusPublish, BusFetch, BusSeek, BusInfo, BusStats, BusRetain, BusRecord, BusHeartbeat
)


def topic_for(stream: str) -> bytes:
    """PUB/SUB topic of a stream; the NUL stops prefix matches across streams."""
    return stream.encode() + b"\0"
