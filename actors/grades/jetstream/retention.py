"""grades' JetStream stream kept bounded: the replicas' snapshot positions decide what goes.

JetStream can only drop a stream's oldest messages, and its own ``max_bytes`` /
``max_age`` would drop them whatever a replica still needs. So the stream has
neither; the built-in bus's rules (actors.bus.retention) are applied from outside:

- Each replica's snapshotter puts its snapshot's position into the KV bucket
  ``<STREAM>_RETAIN`` (key ``replicaN``, value ``{"position", "log_id", "at_ms"}``)
  after every snapshot, and again every interval while nothing moved (a heartbeat).
- Every broker runs ``Trimmer.check`` every TRIM_EVERY_S: the floor is the lowest
  position among the live consumers of this stream (same rules as the bus:
  ``Consumers``; one silent for over BUS_RETAIN_SILENT_S is left out, with a
  warning). When the stream is over BUS_RETAIN_BYTES or holds messages older than
  BUS_RETAIN_AGE_S, the broker purges with ``seq = min(floor + 1, the limits' cut)``.

The guarantee: a purge with ``seq`` removes only messages *below* it, and position
p is sequence p + 1, so the first record a live consumer's snapshot lacks is never
purged. Several brokers trimming at once is harmless: a purge below the stream's
first sequence does nothing. A replica whose position went anyway (retired, timed
out, never reported) is refused by the broker's start check and restores from its
peer (actors.grades.jetstream.stream.start_problem), never skipping records.
``grades retire N`` deletes the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from actors.bus.retention import Consumers
from actors.grades.jetstream.stream import log_id_of, position_of, stream_name

__all__ = [
    "NATS_FAILURES",
    "TRIM_EVERY_S",
    "Trimmer",
    "bucket_name",
    "cut_sequence",
    "open_bucket",
    "read_consumers",
    "report",
    "report_position",
    "retire",
    "retention_state",
]

NATS_FAILURES = (nats.errors.Error, OSError, TimeoutError)
"""What a talk with the cluster can end in (nats-py's own errors, sockets, deadlines)."""
TRIM_EVERY_S = 1.0
"""How often each broker looks at the stream's size and the replicas' positions."""
CONNECT_TIMEOUT_S = 2.0
REQUEST_TIMEOUT_S = 5.0


def bucket_name(stream: str) -> str:
    """The KV bucket holding a stream's consumers' positions ("grades" -> "GRADES_RETAIN")."""
    return f"{stream_name(stream)}_RETAIN"


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


async def open_bucket(js: JetStreamContext, stream: str, replicas: int = 0) -> KeyValue | None:
    """The stream's retain bucket; created with ``replicas`` copies if given, else None."""
    try:
        return await js.key_value(bucket_name(stream))
    except nats.js.errors.BucketNotFoundError:
        if not replicas:
            return None
    return await js.create_key_value(
        api.KeyValueConfig(bucket=bucket_name(stream), history=1, replicas=replicas)
    )


async def report_position(
    js: JetStreamContext, stream: str, replicas: int, consumer: str, position: int, log_id: str
) -> None:
    """A consumer's snapshot covers every position below ``position`` of log ``log_id``."""
    bucket = await open_bucket(js, stream, replicas)
    assert bucket is not None  # created when missing
    value = {"position": position, "log_id": log_id, "at_ms": _now_ms()}
    await bucket.put(consumer, json.dumps(value).encode())


async def read_consumers(
    js: JetStreamContext, stream: str, log_id: str, silent_s: int, since_ms: int = 0
) -> Consumers:
    """The live and silent consumers of log ``log_id`` (another log's reports are ignored).

    A consumer counts as heard at ``since_ms`` at the earliest (the trimmer's start),
    so a cluster that was down does not time out every replica it comes back to.

    NOTE: ``at_ms`` is the reporting replica's wall clock, compared with the broker's:
    the hosts' clocks must agree to well within BUS_RETAIN_SILENT_S (a day by default).
    """
    consumers = Consumers(silent_s)
    bucket = await open_bucket(js, stream)
    if bucket is None:
        return consumers
    prefix = f"$KV.{bucket_name(stream)}."
    info = await js.stream_info(f"KV_{bucket_name(stream)}", subjects_filter=f"{prefix}>")
    for subject in sorted(info.state.subjects or {}):
        try:
            entry = await bucket.get(subject[len(prefix) :])
            report = json.loads(entry.value or b"")
            position, at_ms = int(report["position"]), int(report["at_ms"])
        except (nats.js.errors.KeyDeletedError, nats.js.errors.KeyNotFoundError):
            continue  # retired
        except (ValueError, KeyError, TypeError):
            continue  # not ours; never a reason to keep or drop anything
        if report.get("log_id") == log_id:
            consumers.heard(subject[len(prefix) :], position, max(at_ms, since_ms))
    return consumers


def cut_sequence(
    state: api.StreamState, floor: int, retain_bytes: int, age_cut_seq: int | None
) -> int:
    """The sequence to purge below: what the limits want, never past ``floor`` + 1.

    Args:
        state: the stream's state now.
        floor: the lowest position a live consumer needs (0: none live, purge nothing).
        retain_bytes: purge oldest while the stream is bigger (0: no size limit).
        age_cut_seq: the first sequence young enough to keep (None: no age limit).
    """
    wanted = 0
    if retain_bytes and state.messages and state.bytes > retain_bytes:
        keep = int(retain_bytes // (state.bytes / state.messages))
        wanted = state.last_seq + 1 - keep
    if age_cut_seq is not None:
        wanted = max(wanted, age_cut_seq)
    return min(wanted, floor + 1, state.last_seq + 1) if floor else 0


async def _first_seq_since(nc: NatsClient, stream: str, since: datetime) -> int | None:
    """The first sequence stored at or after ``since``; None if every message is older.

    NOTE: the raw API request: nats-py's get_msg does not take a start time.
    """
    response = await nc.request(
        f"$JS.API.STREAM.MSG.GET.{stream}",
        json.dumps({"start_time": since.isoformat().replace("+00:00", "Z")}).encode(),
        timeout=REQUEST_TIMEOUT_S,
    )
    answer: dict[str, Any] = json.loads(response.data)
    error = answer.get("error")
    if error:
        if error.get("code") == 404:
            return None
        raise nats.js.errors.Error(f"message by time: {error.get('description', error)}")
    return int(answer["message"]["seq"])


class Trimmer:
    """One broker's share of keeping the stream bounded (every broker runs one)."""

    def __init__(
        self,
        stream: str,
        retain_bytes: int,
        retain_age_s: int,
        silent_s: int,
        log: logging.Logger,
    ) -> None:
        self.stream = stream
        self.name = stream_name(stream)
        self.retain_bytes = retain_bytes
        self.retain_age_s = retain_age_s
        self.silent_s = silent_s
        self.log = log
        self.started_ms = _now_ms()
        self.warned: set[str] = set()

    @property
    def enabled(self) -> bool:
        return bool(self.retain_bytes or self.retain_age_s)

    async def check(self, nc: NatsClient, js: JetStreamContext, log_id: str) -> int:
        """Purge what the limits and the live consumers allow; returns messages purged."""
        consumers = await read_consumers(js, self.stream, log_id, self.silent_s, self.started_ms)
        now_ms = _now_ms()
        self._warn_silent(consumers, now_ms)
        floor = consumers.floor(now_ms)
        if not floor:
            return 0
        info = await js.stream_info(self.name)
        state = info.state
        age_cut = None
        if self.retain_age_s:
            since = datetime.fromtimestamp(now_ms / 1000 - self.retain_age_s, UTC)
            first_young = await _first_seq_since(nc, self.name, since)
            age_cut = state.last_seq + 1 if first_young is None else first_young
        cut = cut_sequence(state, floor, self.retain_bytes, age_cut)
        if cut <= state.first_seq:
            return 0
        await js.purge_stream(self.name, seq=cut)
        purged = cut - state.first_seq
        self.log.info(
            "retention purged %d messages of stream %s below sequence %d (position %d); "
            "every live replica's snapshot covers them (floor %d)",
            purged,
            self.name,
            cut,
            position_of(cut),
            floor,
        )
        return purged

    def _warn_silent(self, consumers: Consumers, now_ms: int) -> None:
        silent = {c for c in consumers.positions if consumers.silent(c, now_ms)}
        for consumer in sorted(silent - self.warned):
            self.log.warning(
                "stream %s: consumer %s silent for over %d s (BUS_RETAIN_SILENT_S): it no "
                "longer holds the stream at position %d; retire it if it is gone for good "
                "(grades retire)",
                self.name,
                consumer,
                self.silent_s,
                consumers.positions[consumer],
            )
        self.warned = silent


async def _with_js(url: str, job: Any) -> Any:
    nc = await nats.connect(
        [u.strip() for u in url.split(",") if u.strip()],
        connect_timeout=CONNECT_TIMEOUT_S,
        max_reconnect_attempts=1,
    )
    try:
        return await job(nc.jetstream(timeout=REQUEST_TIMEOUT_S))
    finally:
        await nc.close()


def report(url: str, stream: str, replicas: int, consumer: str, position: int, log_id: str) -> None:
    """report_position over a connection of its own (for the snapshotter, not asyncio).

    NOTE: one connection per report: reports come minutes apart, and a connection kept
    between them would miss the server's pings while no event loop runs.
    """

    async def job(js: JetStreamContext) -> None:
        await report_position(js, stream, replicas, consumer, position, log_id)

    asyncio.run(asyncio.wait_for(_with_js(url, job), 30))


def retire(url: str, stream: str, consumer: str) -> bool:
    """Delete a consumer's position (an operator's ``grades retire``); False if unknown."""

    async def job(js: JetStreamContext) -> bool:
        bucket = await open_bucket(js, stream)
        if bucket is None:
            return False
        try:
            await bucket.get(consumer)
        except (nats.js.errors.KeyDeletedError, nats.js.errors.KeyNotFoundError):
            return False
        await bucket.delete(consumer)
        return True

    result: bool = asyncio.run(asyncio.wait_for(_with_js(url, job), 30))
    return result


def retention_state(url: str, stream: str, silent_s: int) -> dict[str, Any]:
    """The stream's size, first position and consumers, as the bus's BusStats says them."""

    async def job(js: JetStreamContext) -> dict[str, Any]:
        info = await js.stream_info(stream_name(stream))
        log_id = log_id_of(stream_name(stream), info.created)
        consumers = await read_consumers(js, stream, log_id, silent_s)
        now_ms = _now_ms()
        return {
            "log_id": log_id,
            "first": position_of(info.state.first_seq),
            "records": info.state.last_seq,
            "bytes": info.state.bytes,
            "retain_floor": consumers.floor(now_ms),
            "consumers": consumers.table(now_ms),
            "retain_silent_s": silent_s,
        }

    result: dict[str, Any] = asyncio.run(asyncio.wait_for(_with_js(url, job), 30))
    return result
