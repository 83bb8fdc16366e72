"""grades' messages: HTTP workers -> storage actor, and broker <-> storage.

Framed by actors.runtime.protocol (``[VERSION, tag, request_id, *fields]``);
request/reply from the HTTP workers' DEALER to the storage actor's ROUTER,
one-way (request_id 0) between the broker and the storage actor.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from actors.runtime import protocol

__all__ = [
    "Set",
    "Get",
    "SnapshotOpen",
    "SnapshotNext",
    "Status",
    "BrokerStatus",
    "CatchUp",
    "Publish",
    "Acked",
    "Failed",
    "Apply",
    "Live",
    "Gone",
]


# --- HTTP workers -> storage actor -------------------------------------------


@protocol.tagged("set")
class Set(NamedTuple):
    """Merge the present fields into a user's record (grades)."""

    key: str
    """user_id: non-empty, at most 128 UTF-8 bytes."""
    values: list[int | None]
    """The four integer fields in records.FIELDS order; None means absent (kept)."""
    deadline_ms: int
    """Wall-clock ms after which the caller has given up: the actor drops it unapplied."""
    trace: str = ""
    """The HTTP request id, named in every log line about this write."""


@protocol.tagged("get")
class Get(NamedTuple):
    """Read one record; Ok(row) or Error(NOT_FOUND)."""

    key: str
    """user_id."""


@protocol.tagged("snapshot_open")
class SnapshotOpen(NamedTuple):
    """Start a consistent-enough snapshot for a backup; Ok([snapshot_id, meta])."""


@protocol.tagged("snapshot_next")
class SnapshotNext(NamedTuple):
    """Next chunk of a snapshot; Ok([user_ids, rows]), both empty once done.

    rows is bytes: 8 int64s a user_id (4 values, 4 versions) in the host's byte
    order (records.unpack_rows), one buffer instead of a list per row to encode.
    """

    snapshot_id: int
    """From SnapshotOpen's reply."""
    max_rows: int
    """Upper bound on the rows in this chunk."""


@protocol.tagged("status")
class Status(NamedTuple):
    """Actor state for health checks and `grades status`; Ok(dict)."""


# --- broker <-> storage (one-way, request_id 0) -------------------------------


@protocol.tagged("broker_status")
class BrokerStatus(NamedTuple):
    """Broker -> storage heartbeat; a new session means a restarted broker."""

    session: str
    """Random per broker process."""
    bus_up: bool
    """The bus answered heartbeats recently: publishing may succeed."""
    log_id: str
    """Identity of the bus log ("" until known)."""
    bus_end: int
    """Next position the bus will assign (-1 until known)."""
    next_position: int
    """Next position the broker will deliver to storage (-1 when idle)."""


@protocol.tagged("catch_up")
class CatchUp(NamedTuple):
    """Storage -> broker: deliver the log from a position on, then go live."""

    catchup_id: int
    """Tags the Apply/Live replies so stale ones from an earlier session are ignored."""
    from_position: int
    """First log position storage has not applied."""
    log_id: str
    """The log the position refers to ("" for any); another log means replay from 0."""


@protocol.tagged("publish")
class Publish(NamedTuple):
    """Storage -> the JetStream broker: append this batch to the log durably.

    On the built-in bus storage sends the batch itself (actors.bus.messages.BusPublish,
    with the seq as request id) and the bus answers it directly."""

    seq: int
    """Storage-chosen, unique across its restarts; echoed in Acked/Failed."""
    data: bytes
    """Encoded payload, opaque to broker and bus."""
    traces: list[str] = []
    """Request ids of the sets in the batch, for log lines (not stored in the log)."""


@protocol.tagged("acked")
class Acked(NamedTuple):
    """Broker -> storage: these batches are durable in the log."""

    seqs: list[int]
    """Publish.seq values."""


@protocol.tagged("failed")
class Failed(NamedTuple):
    """Broker -> storage: these batches did not make it (or may not have)."""

    seqs: list[int]
    """Publish.seq values."""
    code: str
    """UNAVAILABLE (certainly not logged) or UNKNOWN_OUTCOME."""
    reason: str
    """For the log and the HTTP error body."""


@protocol.tagged("apply")
class Apply(NamedTuple):
    """Broker -> storage: log records to apply, in log order."""

    catchup_id: int
    """From the CatchUp this answers."""
    records: list[list[Any]]
    """[position, seq, data] per record. The bus's broker sends every record; storage skips
    its own merged on the bus's ack. The JetStream broker leaves out the own ones it acked."""
    next_position: int
    """Every position below this has been delivered (or deliberately left out)."""


@protocol.tagged("live")
class Live(NamedTuple):
    """Broker -> storage: caught up with the log; records now follow live."""

    catchup_id: int
    """From the CatchUp this answers."""
    next_position: int
    """Next position that will be delivered."""
    log_id: str
    """Identity of the log the positions refer to."""


@protocol.tagged("gone")
class Gone(NamedTuple):
    """Broker -> storage: the log no longer holds the position asked for (retention, purge).

    Refused loudly rather than replayed from wherever the log now starts, which
    would silently lose the records in between; storage falls back to a backup.
    """

    catchup_id: int
    """From the CatchUp this answers."""
    first_position: int
    """The oldest position the log still holds (-1 if unknown)."""
    reason: str
    """For the log."""
