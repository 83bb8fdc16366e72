"""The bus: the cluster's persisted log with publish, fan-out and replay.

Producers send BusPublish to its ROUTER. Each loop turn takes every message
waiting (up to DRAIN_MAX), appends all publishes to their streams' logs, makes
them durable with one fdatasync per stream (group commit: the batch grows by
itself while the previous fsync runs), and only then acknowledges each
publish and fans the records out on PUB. So a subscriber never sees a record
the bus could still lose, and an acknowledged record survives kill -9.

Consumers read history with BusFetch (from a position) or BusSeek (from a
time); a position that retention deleted is refused (NOT_FOUND), never served
from wherever the log starts now. BusRetain reports a consumer's snapshot
position, and every RETAIN_CHECK_MS the bus deletes what actors.bus.retention
allows. Every HEARTBEAT_MS the bus publishes each stream's log id and end, so
subscribers notice both a dead bus and records they missed.
"""

from __future__ import annotations

import bisect
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import zmq

from actors.bus import messages as bus_messages
from actors.bus.config import BusConfig
from actors.bus.log import Log, LogGone
from actors.bus.retention import Retention
from actors.bus.segment import Record
from actors.runtime import protocol
from actors.runtime.base import Actor, monotonic_ms, run_actor, setup_logging
from actors.runtime.config import reports_config_errors
from actors.runtime.protocol import Error, ErrorCode, Ok
from actors.runtime.security import Curve

__all__ = ["BusActor", "main"]

HEARTBEAT_MS = 200
FETCH_MAX_BYTES = 4 * 1024 * 1024
FETCH_MAX_RECORDS = 5000
PUB_HWM = 100_000
STREAM_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
U64_MAX = (1 << 64) - 1
SLOW_FSYNC_MS = 200
FSYNC_BUCKETS_MS = (0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000)
"""Upper bounds of the group-commit latency histogram that BusStats reports."""
RETAIN_CHECK_MS = 1000
"""How often each stream's retention is applied."""
REOPEN_EVERY_MS = 1000
"""How often a stream whose log failed is tried again while publishes are refused."""

_StreamMessage = (
    bus_messages.BusPublish
    | bus_messages.BusFetch
    | bus_messages.BusSeek
    | bus_messages.BusRetain
    | bus_messages.BusRetire
    | bus_messages.BusInfo
)
"""The requests that name a stream."""
_Appended = tuple[bytes, int, str, Record]
"""A publish buffered in a drain: (ident, request_id, stream, record)."""
_Read = tuple[bytes, int, Callable[[Any], Ok | Error], _StreamMessage]
"""A read queued until after the drain's commit: (ident, request_id, read, message)."""


class BusActor(Actor):
    name = "bus"

    def __init__(self, config: BusConfig) -> None:
        super().__init__(Curve.load(config.curve_dir))
        self.config = config
        self.logs: dict[str, Log] = {}
        self.retention: dict[str, Retention] = {}
        self._retain_ms = 0
        self._started_ms = time.time_ns() // 1_000_000
        self.broken: dict[str, int] = {}  # stream -> monotonic ms of the last reopen attempt
        self._heartbeat_ms = 0
        self.fsyncs = 0
        self.fsync_ms_total = 0.0
        self.fsync_buckets = [0] * (len(FSYNC_BUCKETS_MS) + 1)  # the last one is +Inf
        self._appended: list[_Appended] = []  # publishes buffered in this drain, committed after
        self._reads: list[
            _Read
        ] = []  # (ident, request_id, read function, message), after the commit

    def setup(self) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.config.log_dir.iterdir()):
            if path.is_dir() and STREAM_NAME.fullmatch(path.name):
                self._log(path.name)
        self.router = self.server_socket(zmq.ROUTER)
        self.serve(self.router)
        self.router.bind(self.config.bus_url)
        self.pub = self.server_socket(zmq.PUB)
        self.pub.sndhwm = PUB_HWM
        self.pub.bind(self.config.bus_pub_url)
        self.log.info(
            "bus listening on %s (requests) and %s (fan-out); logs in %s",
            self.config.bus_url,
            self.config.bus_pub_url,
            self.config.log_dir,
        )

    def teardown(self) -> None:
        for log in self.logs.values():
            log.close()

    def _log(self, stream: str) -> Log:
        log = self.logs.get(stream)
        if log is None:
            log = Log(self.config.log_dir / stream, self.config.segment_bytes)
            report = log.open()
            self.retention[stream] = Retention(
                self.config.log_dir / stream,
                self.config.retain_bytes,
                self.config.retain_age_s,
                self.config.retain_silent_s,
                self._started_ms,
            )
            if report.reason:
                self.log.warning(
                    "stream %r: recovered %d records; cut %d bytes and %d segments: %s",
                    stream,
                    report.records,
                    report.truncated_bytes,
                    report.removed_segments,
                    report.reason,
                )
            else:
                self.log.info(
                    "stream %r: %d records in %d segments, log %s",
                    stream,
                    report.records,
                    report.segments,
                    log.log_id,
                )
            self.logs[stream] = log
        return log

    def on_tick(self) -> None:
        now = monotonic_ms()
        if now - self._heartbeat_ms >= HEARTBEAT_MS:
            self._heartbeat_ms = now
            for stream, log in self.logs.items():
                self.pub.send_multipart(
                    [
                        bus_messages.topic_for(stream),
                        protocol.encode(bus_messages.BusHeartbeat(log.log_id, log.committed_end)),
                    ]
                )
        if now - self._retain_ms >= RETAIN_CHECK_MS:
            self._retain_ms = now
            self._trim()

    def _trim(self) -> None:
        now_ms = time.time_ns() // 1_000_000
        for stream, log in self.logs.items():
            if stream in self.broken:
                continue
            retention = self.retention[stream]
            for consumer in retention.consumers.newly_silent(now_ms):
                self.log.warning(
                    "stream %r: consumer %s silent for over %d s (BUS_RETAIN_SILENT_S): it no "
                    "longer holds the log at position %d; retire it if it is gone for good "
                    "(grades retire)",
                    stream,
                    consumer,
                    self.config.retain_silent_s,
                    retention.positions[consumer],
                )
            try:
                freed = retention.trim(log, now_ms)
            except OSError as exc:
                self.log.error("stream %r: retention failed: %s", stream, exc)
                continue
            if freed:
                self.log.info(
                    "stream %r: retention deleted %d bytes of segments every "
                    "consumer has snapshotted; the log now starts at %d",
                    stream,
                    freed,
                    log.first_position,
                )

    # --- requests ------------------------------------------------------------

    def before_drain(self, sock: zmq.Socket[bytes]) -> None:
        self._appended, self._reads = [], []

    def after_drain(self, sock: zmq.Socket[bytes]) -> None:
        """Group commit of the drain's publishes, then the reads (which see them)."""
        if self._appended:
            self._commit(self._appended)
        for ident, request_id, read, message in self._reads:
            try:
                reply = (
                    read(message)
                    if self._usable(message.stream)
                    else Error(ErrorCode.UNAVAILABLE, "the bus cannot read its log", 1)
                )
            except Exception as exc:
                self.log.exception("%s failed", protocol.tag_of(message))
                reply = Error(ErrorCode.INTERNAL, repr(exc))
            self.reply(ident, request_id, reply)

    @staticmethod
    def _check_stream(message: _StreamMessage) -> None:
        if not isinstance(message.stream, str) or not STREAM_NAME.fullmatch(message.stream):
            raise protocol.ProtocolError(f"bad stream name {message.stream!r}")

    def handle_bus_stats(
        self, ident: bytes, request_id: int, _message: bus_messages.BusStats
    ) -> None:
        self.reply(ident, request_id, Ok(self._stats()))

    def handle_bus_publish(
        self, ident: bytes, request_id: int, message: bus_messages.BusPublish
    ) -> None:
        self._check_stream(message)
        entry = self._append(ident, request_id, message)
        if entry is not None:
            self._appended.append(entry)

    def handle_bus_fetch(
        self, ident: bytes, request_id: int, message: bus_messages.BusFetch
    ) -> None:
        self._check_stream(message)
        self._reads.append((ident, request_id, self._fetch, message))

    def handle_bus_seek(self, ident: bytes, request_id: int, message: bus_messages.BusSeek) -> None:
        self._check_stream(message)
        self._reads.append((ident, request_id, self._seek, message))

    def handle_bus_retain(
        self, ident: bytes, request_id: int, message: bus_messages.BusRetain
    ) -> None:
        self._check_stream(message)
        self._reads.append((ident, request_id, self._retain, message))

    def handle_bus_retire(
        self, ident: bytes, request_id: int, message: bus_messages.BusRetire
    ) -> None:
        self._check_stream(message)
        self._reads.append((ident, request_id, self._retire, message))

    def handle_bus_info(self, ident: bytes, request_id: int, message: bus_messages.BusInfo) -> None:
        self._check_stream(message)
        self._reads.append((ident, request_id, self._info, message))

    def _append(
        self, ident: bytes, request_id: int, message: bus_messages.BusPublish
    ) -> _Appended | None:
        """Buffer a publish in its log; None if it was answered with an error instead."""
        problem = self._check_publish(message)
        if problem:
            self.reply(ident, request_id, Error(ErrorCode.BAD_REQUEST, problem))
            return None
        if not self._usable(message.stream):
            self.reply(
                ident, request_id, Error(ErrorCode.UNAVAILABLE, "the bus cannot write its log", 1)
            )
            return None
        record = self._log(message.stream).append(message.origin, message.seq, message.data)
        return ident, request_id, message.stream, record

    def _usable(self, stream: str) -> bool:
        return stream not in self.broken or self._reopen(stream)

    def _check_publish(self, message: bus_messages.BusPublish) -> str | None:
        if not isinstance(message.origin, str) or not message.origin:
            return "origin: must be a non-empty string"
        if type(message.seq) is not int or not 0 <= message.seq <= U64_MAX:
            return "seq: must be an unsigned 64-bit integer"
        data: object = message.data  # as decoded: a peer may send any type
        if not isinstance(data, bytes):
            return "data: must be bytes"
        return None

    def _commit(self, appended: list[_Appended]) -> None:
        """Group commit: one fdatasync per stream, then acks, then fan-out."""
        failed: set[str] = set()
        for stream in {stream for _, _, stream, _ in appended}:
            started = time.perf_counter()
            try:
                self.logs[stream].commit()
            except OSError as exc:
                self.log.error(
                    "stream %r: cannot write the log (%s); refusing publishes until it can",
                    stream,
                    exc,
                )
                failed.add(stream)
                self.logs[stream].discard()
                self.broken[stream] = 0
                self._reopen(stream)
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.fsyncs += 1
            self.fsync_ms_total += elapsed_ms
            self.fsync_buckets[bisect.bisect_left(FSYNC_BUCKETS_MS, elapsed_ms)] += 1
            if elapsed_ms > SLOW_FSYNC_MS:
                self.log.warning("stream %r: group commit took %.0f ms", stream, elapsed_ms)
        for ident, request_id, stream, record in appended:
            if stream in failed:
                self.reply(
                    ident,
                    request_id,
                    Error(ErrorCode.UNAVAILABLE, "the bus cannot write its log", 1),
                )
                continue
            self.reply(ident, request_id, Ok([record.position, record.time_ms]))
            self.pub.send_multipart(
                [bus_messages.topic_for(stream), protocol.encode(bus_messages.BusRecord(*record))]
            )

    def _stats(self) -> dict[str, Any]:
        now_ms = time.time_ns() // 1_000_000
        streams: dict[str, dict[str, Any]] = {}
        for stream, log in self.logs.items():
            directory = self.config.log_dir / stream
            size = sum(
                entry.stat().st_size
                for entry in os.scandir(directory)
                if entry.name.endswith(".log")
            )
            streams[stream] = {
                "log_id": log.log_id,
                "records": log.committed_end,
                "first": log.first_position,
                "retain_floor": self.retention[stream].floor(now_ms),
                "consumers": self.retention[stream].consumers.table(now_ms),
                "retain_silent_s": self.config.retain_silent_s,
                "bytes": size,
                "writable": stream not in self.broken,
            }
        return {
            "streams": streams,
            "fsyncs": self.fsyncs,
            "fsync_ms_total": self.fsync_ms_total,
            "fsync_buckets_ms": list(FSYNC_BUCKETS_MS),
            "fsync_bucket_counts": self.fsync_buckets,
        }

    def _reopen(self, stream: str) -> bool:
        """Reopen a stream's log after a failed write; recovery cuts any partial tail.

        Returns:
            True once the log is usable again.
        """
        now = monotonic_ms()
        if now - self.broken[stream] < REOPEN_EVERY_MS:
            return False
        self.broken[stream] = now
        log = self.logs[stream]
        try:
            log.close()
        except OSError:
            pass
        try:
            report = log.open()
        except OSError as exc:
            self.log.error("stream %r: cannot reopen the log yet (%s)", stream, exc)
            return False
        del self.broken[stream]
        self.log.warning(
            "stream %r: log reopened at position %d (%s)",
            stream,
            log.committed_end,
            report.reason or "clean",
        )
        return True

    def _fetch(self, message: bus_messages.BusFetch) -> Ok | Error:
        if type(message.from_position) is not int or message.from_position < 0:
            return Error(ErrorCode.BAD_REQUEST, "from_position: must be a non-negative int")
        log = self._log(message.stream)
        limit = message.max_records if type(message.max_records) is int else 1
        try:
            records = log.read(
                message.from_position, max(1, min(limit, FETCH_MAX_RECORDS)), FETCH_MAX_BYTES
            )
        except LogGone as exc:
            return Error(ErrorCode.NOT_FOUND, str(exc))
        return Ok([log.log_id, log.committed_end, [list(r) for r in records]])

    def _seek(self, message: bus_messages.BusSeek) -> Ok | Error:
        if type(message.time_ms) is not int:
            return Error(ErrorCode.BAD_REQUEST, "time_ms: must be an integer")
        return Ok(self._log(message.stream).position_at_time(message.time_ms))

    def _retain(self, message: bus_messages.BusRetain) -> Ok | Error:
        if (
            not isinstance(message.consumer, str)
            or not message.consumer
            or type(message.position) is not int
            or message.position < 0
        ):
            return Error(ErrorCode.BAD_REQUEST, "consumer and position: a name and an int >= 0")
        log = self._log(message.stream)
        if message.log_id != log.log_id:
            return Error(
                ErrorCode.BAD_REQUEST,
                f"position of log {message.log_id!r}, not of this stream's log {log.log_id}",
            )
        retention = self.retention[message.stream]
        now_ms = time.time_ns() // 1_000_000
        was_silent = retention.consumers.silent(message.consumer, now_ms)
        retention.record(
            message.consumer, min(message.position, log.committed_end), log.log_id, now_ms
        )
        if was_silent and message.consumer in retention.positions:
            self.log.warning(
                "stream %r: consumer %s reports again (position %d): it holds the log again",
                message.stream,
                message.consumer,
                message.position,
            )
        return Ok([log.first_position, retention.floor(now_ms)])

    def _retire(self, message: bus_messages.BusRetire) -> Ok | Error:
        if not isinstance(message.consumer, str) or not message.consumer:
            return Error(ErrorCode.BAD_REQUEST, "consumer: a non-empty name")
        log = self._log(message.stream)
        retention = self.retention[message.stream]
        if not retention.retire(message.consumer):
            return Error(
                ErrorCode.NOT_FOUND,
                f"stream {message.stream!r} has no consumer {message.consumer!r} "
                f"(it has {sorted(retention.positions) or 'none'})",
            )
        floor = retention.floor(time.time_ns() // 1_000_000)
        self.log.warning(
            "stream %r: consumer %s retired by an operator; the floor is now %d",
            message.stream,
            message.consumer,
            floor,
        )
        return Ok([log.first_position, floor])

    def _info(self, message: bus_messages.BusInfo) -> Ok | Error:
        log = self._log(message.stream)
        return Ok([log.log_id, log.committed_end])


@reports_config_errors
def main() -> int:
    setup_logging("bus")
    return run_actor(BusActor(BusConfig.from_env()), "grades: bus")


if __name__ == "__main__":
    sys.exit(main())
