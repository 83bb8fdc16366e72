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
    "BusRetire",
    "BusRecord",
    "BusHeartbeat",
    "topic_for",
]


# --- broker (or any producer/consumer) <-> bus --------------------------------


@protocol.tagged("bus_publish")
class BusPublish(NamedTuple):
    """Append data to a stream; Ok([position, time_ms]) once it is fsynced."""

    stream: str
    """Log name, e.g. "grades"; created on first use."""
    origin: str
    """Producer id, stored with the record so subscribers can drop their own."""
    seq: int
    """Producer sequence number, stored with the record."""
    data: bytes
    """Opaque payload."""


@protocol.tagged("bus_fetch")
class BusFetch(NamedTuple):
    """Read durable records; Ok([log_id, end, [[pos, time_ms, origin, seq, data], ...]])."""

    stream: str
    """Log name."""
    from_position: int
    """First position wanted."""
    max_records: int
    """Upper bound on records returned."""


@protocol.tagged("bus_seek")
class BusSeek(NamedTuple):
    """Position of the first record at or after a time; Ok(position)."""

    stream: str
    """Log name."""
    time_ms: int
    """Wall-clock ms."""


@protocol.tagged("bus_info")
class BusInfo(NamedTuple):
    """Ok([log_id, end]) of a stream (created if missing)."""

    stream: str
    """Log name."""


@protocol.tagged("bus_stats")
class BusStats(NamedTuple):
    """Ok({stream: {...}}): records, bytes on disk, retention consumers, fsync latency."""


@protocol.tagged("bus_retain")
class BusRetain(NamedTuple):
    """A consumer's own snapshot covers the stream below a position; Ok([first, floor]).

    The bus may then delete segments below every consumer's position (see
    actors.bus.retention); first is the oldest position it still keeps.
    """

    stream: str
    """Log name."""
    consumer: str
    """Stable consumer name, e.g. "replica1"."""
    position: int
    """Every record below it is in the consumer's snapshot."""
    log_id: str
    """The log the position refers to; another log's is refused."""


@protocol.tagged("bus_retire")
class BusRetire(NamedTuple):
    """An operator retires a consumer: it no longer holds the log; Ok([first, floor]).

    NOT_FOUND if the stream has no such consumer. A retired consumer that reports
    again is a consumer again (from its new position).
    """

    stream: str
    """Log name."""
    consumer: str
    """The name it reported with, e.g. "replica2"."""


@protocol.tagged("bus_record")
class BusRecord(NamedTuple):
    """PUB: one durable record of a stream."""

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


@protocol.tagged("bus_heartbeat")
class BusHeartbeat(NamedTuple):
    """PUB, every HEARTBEAT_MS per stream: liveness and the end, to spot lost records."""

    log_id: str
    """Identity of the stream's log."""
    end: int
    """Next position to be assigned."""


def topic_for(stream: str) -> bytes:
    """PUB/SUB topic of a stream; the NUL stops prefix matches across streams."""
    return stream.encode() + b"\0"
