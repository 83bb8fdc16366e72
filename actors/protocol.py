"""The wire protocol of every actor: message shapes, msgpack framing, errors.

This module is the only place message shapes live. Every message is a NamedTuple
whose class attribute ``TAG`` names it on the wire; the body frame is one msgpack
array::

    [VERSION, tag, request_id, *fields]

Request/reply runs DEALER -> ROUTER; ZMQ adds the routing identity::

    client DEALER                   actor ROUTER
    [body]              ------>     [identity, body]
    [body]              <------     [identity, body]     body tag is "ok" or "error"

One-way messages between actors (broker <-> storage) use the same body with
request_id 0. Many messages to the same peer may travel as one Batch frame,
whose items are the arrays above, unserialized::

    [VERSION, "batch", 0, [[VERSION, tag, request_id, *fields], ...]]

so one ZMQ send carries every request a worker made in one event-loop turn, and
every reply an actor owes one peer after one drain. The bus fans records out over PUB as two frames::

    [topic, body]       topic = stream name + b"\\0" (so "a" does not match "ab")

A body that is not msgpack, not an array, of another VERSION, of an unknown tag
or of the wrong arity raises ProtocolError; actors answer it with an error reply
and carry on.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgpack

__all__ = [
    "VERSION",
    "MAX_FRAME_BYTES",
    "ErrorCode",
    "ProtocolError",
    "encode",
    "encode_batch",
    "decode",
    "unbatch",
    "topic_for",
    "Ok",
    "Error",
    "Batch",
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
    "BusPublish",
    "BusFetch",
    "BusSeek",
    "BusInfo",
    "BusStats",
    "BusRecord",
    "BusHeartbeat",
]

VERSION = 1
"""Bumped on any incompatible change; a peer speaking another version gets an error."""

MAX_FRAME_BYTES = 8 * 1024 * 1024
"""Every socket sets ZMQ_MAXMSGSIZE to this: a bigger frame drops the connection."""


class ErrorCode:
    """Error codes carried by Error replies; the HTTP layer maps them to statuses."""

    BAD_REQUEST = "bad_request"  # 400: the message's content is invalid
    NOT_FOUND = "not_found"  # 404: no such record / snapshot
    UNAVAILABLE = "unavailable"  # 503: nothing was done; retry later
    UNKNOWN_OUTCOME = "unknown_outcome"  # 504: sent on, no answer; may have applied
    PROTOCOL = "protocol"  # malformed frame, wrong version, unknown tag
    INTERNAL = "internal"  # a handler raised; the actor logged it and lives on


class ProtocolError(ValueError):
    """A frame that cannot be decoded into a known message."""


# --- framing ----------------------------------------------------------------


class Batch(NamedTuple):
    """Several messages in one frame; see the module docstring."""

    TAG = "batch"
    items: list
    """[VERSION, tag, request_id, *fields] per message."""


# --- replies ----------------------------------------------------------------


class Ok(NamedTuple):
    """Success reply."""

    TAG = "ok"
    result: Any
    """The answer; its shape depends on the request."""


class Error(NamedTuple):
    """Failure reply: nothing was changed unless code is UNKNOWN_OUTCOME."""

    TAG = "error"
    code: str
    """One of ErrorCode."""
    reason: str
    """Human-readable, names the offending field where there is one."""
    retry_after_s: int = 0
    """For UNAVAILABLE: seconds after which a retry may succeed."""


# --- HTTP workers -> storage actor -------------------------------------------


class Set(NamedTuple):
    """Merge the present fields into a user's record (grades)."""

    TAG = "set"
    key: str
    """user_id: non-empty, at most 128 UTF-8 bytes."""
    values: list
    """The four integer fields in records.FIELDS order; None means absent (kept)."""
    deadline_ms: int
    """Wall-clock ms after which the caller has given up: the actor drops it unapplied."""
    trace: str = ""
    """The HTTP request id, named in every log line about this write."""


class Get(NamedTuple):
    """Read one record; Ok(row) or Error(NOT_FOUND)."""

    TAG = "get"
    key: str
    """user_id."""


class SnapshotOpen(NamedTuple):
    """Start a consistent-enough snapshot for a backup; Ok([snapshot_id, meta])."""

    TAG = "snapshot_open"


class SnapshotNext(NamedTuple):
    """Next chunk of a snapshot; Ok([user_ids, rows of 8 ints]), both empty once done."""

    TAG = "snapshot_next"
    snapshot_id: int
    """From SnapshotOpen's reply."""
    max_rows: int
    """Upper bound on the rows in this chunk."""


class Status(NamedTuple):
    """Actor state for health checks and `grades status`; Ok(dict)."""

    TAG = "status"


# --- broker <-> storage (one-way, request_id 0) -------------------------------


class BrokerStatus(NamedTuple):
    """Broker -> storage heartbeat; a new session means a restarted broker."""

    TAG = "broker_status"
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


class CatchUp(NamedTuple):
    """Storage -> broker: deliver the log from a position on, then go live."""

    TAG = "catch_up"
    catchup_id: int
    """Tags the Apply/Live replies so stale ones from an earlier session are ignored."""
    from_position: int
    """First log position storage has not applied."""
    log_id: str
    """The log the position refers to ("" for any); another log means replay from 0."""


class Publish(NamedTuple):
    """Storage -> broker: append this batch of changes to the bus log durably."""

    TAG = "publish"
    seq: int
    """Storage-chosen, unique across its restarts; echoed in Acked/Failed."""
    data: bytes
    """Encoded payload, opaque to broker and bus."""
    traces: list = []
    """Request ids of the sets in the batch, for log lines (not stored in the log)."""


class Acked(NamedTuple):
    """Broker -> storage: these batches are durable in the log."""

    TAG = "acked"
    seqs: list
    """Publish.seq values."""


class Failed(NamedTuple):
    """Broker -> storage: these batches did not make it (or may not have)."""

    TAG = "failed"
    seqs: list
    """Publish.seq values."""
    code: str
    """UNAVAILABLE (certainly not logged) or UNKNOWN_OUTCOME."""
    reason: str
    """For the log and the HTTP error body."""


class Apply(NamedTuple):
    """Broker -> storage: log records to apply, in log order."""

    TAG = "apply"
    catchup_id: int
    """From the CatchUp this answers."""
    records: list
    """[position, seq, data] per record; the broker leaves out storage's own acked ones."""
    next_position: int
    """Every position below this has been delivered (or deliberately left out)."""


class Live(NamedTuple):
    """Broker -> storage: caught up with the log; records now follow live."""

    TAG = "live"
    catchup_id: int
    """From the CatchUp this answers."""
    next_position: int
    """Next position that will be delivered."""
    log_id: str
    """Identity of the log the positions refer to."""


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


_MESSAGES = {
    cls.TAG: cls
    for cls in (
        Batch, Ok, Error, Set, Get, SnapshotOpen, SnapshotNext, Status, BrokerStatus, CatchUp,
        Publish, Acked, Failed, Apply, Live, BusPublish, BusFetch, BusSeek, BusInfo,
        BusStats, BusRecord, BusHeartbeat,
    )
}
_ARITY = {tag: (len(cls._fields) - len(cls._field_defaults), len(cls._fields))
          for tag, cls in _MESSAGES.items()}

_packer = msgpack.Packer(use_bin_type=True)


def encode(message: NamedTuple, request_id: int = 0) -> bytes:
    """Body frame for a message.

    Args:
        message: one of this module's NamedTuples.
        request_id: echoed in the reply so a client can match it; 0 for one-way.

    Returns:
        The msgpack bytes.
    """
    return _packer.pack([VERSION, message.TAG, request_id, *message])


def encode_batch(messages: list) -> bytes:
    """One frame carrying several messages.

    Args:
        messages: (message, request_id) pairs.
    """
    return _packer.pack([VERSION, Batch.TAG, 0,
                         [[VERSION, m.TAG, request_id, *m] for m, request_id in messages]])


def decode(body: bytes) -> tuple[int, NamedTuple]:
    """Parse a body frame.

    Returns:
        (request_id, message).

    Raises:
        ProtocolError: anything but a well-formed message of this VERSION.
    """
    try:
        frame = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"not msgpack: {exc.__class__.__name__}") from None
    return _from_frame(frame)


def _from_frame(frame) -> tuple[int, NamedTuple]:
    if not isinstance(frame, list) or len(frame) < 3:
        raise ProtocolError("frame is not [version, tag, request_id, ...]")
    version, tag, request_id = frame[0], frame[1], frame[2]
    if type(version) is not int or version != VERSION:
        raise ProtocolError(f"protocol version {version!r}, expected {VERSION}")
    cls = _MESSAGES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {tag!r}")
    if not isinstance(request_id, int) or isinstance(request_id, bool):
        raise ProtocolError("request_id is not an integer")
    low, high = _ARITY[tag]
    if not low <= len(frame) - 3 <= high:
        raise ProtocolError(f"{tag}: expected {low}..{high} fields, got {len(frame) - 3}")
    return request_id, cls(*frame[3:])


def unbatch(request_id: int, message) -> list:
    """The (request_id, message) pairs a decoded frame carries: itself, or a Batch's items.

    Raises:
        ProtocolError: a malformed item, or a Batch inside a Batch.
    """
    if not isinstance(message, Batch):
        return [(request_id, message)]
    if not isinstance(message.items, list):
        raise ProtocolError("batch: items is not a list")
    pairs = [_from_frame(item) for item in message.items]
    if any(isinstance(m, Batch) for _, m in pairs):
        raise ProtocolError("batch: nested batches are not allowed")
    return pairs


def topic_for(stream: str) -> bytes:
    """PUB/SUB topic of a stream; the NUL stops prefix matches across streams."""
    return stream.encode() + b"\0"
