"""The bus: the cluster's persisted log with publish, fan-out and replay.

Producers send BusPublish to its ROUTER. Each loop turn takes every message
waiting (up to DRAIN_MAX), appends all publishes to their streams' logs, makes
them durable with one fdatasync per stream (group commit: the batch grows by
itself while the previous fsync runs), and only then acknowledges each
publish and fans the records out on PUB. So a subscriber never sees a record
the bus could still lose, and an acknowledged record survives kill -9.

Consumers read history with BusFetch (from a position) or BusSeek (from a
time). Every HEARTBEAT_MS the bus publishes each stream's log id and end, so
subscribers notice both a dead bus and records they missed.
"""

from __future__ import annotations

import bisect
import os
import re
import sys
import time

import zmq

from actors.runtime import protocol
from actors.bus import messages as bus_messages
from actors.runtime.base import DRAIN_MAX, Actor, monotonic_ms, run_actor, setup_logging
from actors.bus.config import BusConfig
from actors.bus.log import Log
from actors.runtime.security import Curve
from actors.runtime.protocol import Error, ErrorCode, Ok

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
REOPEN_EVERY_MS = 1000
"""How often a stream whose log failed is tried again while publishes are refused."""


class BusActor(Actor):
    name = "bus"

    def __init__(self, config: BusConfig):
        super().__init__(Curve.load(config.curve_dir))
        self.config = config
        self.logs: dict[str, Log] = {}
        self.broken: dict[str, int] = {}  # stream -> monotonic ms of the last reopen attempt
        self._heartbeat_ms = 0
        self.fsyncs = 0
        self.fsync_ms_total = 0.0
        self.fsync_buckets = [0] * (len(FSYNC_BUCKETS_MS) + 1)  # the last one is +Inf

    def setup(self) -> None:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.config.log_dir.iterdir()):
            if path.is_dir() and STREAM_NAME.match(path.name):
                self._log(path.name)
        self.router = self.server_socket(zmq.ROUTER, self._on_router)
        self.router.bind(self.config.bus_url)
        self.pub = self.server_socket(zmq.PUB)
        self.pub.sndhwm = PUB_HWM
        self.pub.bind(self.config.bus_pub_url)
        self.log.info("bus listening on %s (requests) and %s (fan-out); logs in %s",
                      self.config.bus_url, self.config.bus_pub_url, self.config.log_dir)

    def teardown(self) -> None:
        for log in self.logs.values():
            log.close()

    def _log(self, stream: str) -> Log:
        log = self.logs.get(stream)
        if log is None:
            log = Log(self.config.log_dir / stream)
            report = log.open()
            if report.reason:
                self.log.warning("stream %r: recovered %d records; cut %d bytes and %d "
                                 "segments: %s", stream, report.records,
                                 report.truncated_bytes, report.removed_segments, report.reason)
            else:
                self.log.info("stream %r: %d records in %d segments, log %s", stream,
                              report.records, report.segments, log.log_id)
            self.logs[stream] = log
        return log

    def on_tick(self) -> None:
        now = monotonic_ms()
        if now - self._heartbeat_ms >= HEARTBEAT_MS:
            self._heartbeat_ms = now
            for stream, log in self.logs.items():
                self.pub.send_multipart([bus_messages.topic_for(stream), protocol.encode(
                    bus_messages.BusHeartbeat(log.log_id, log.committed_end))])

    # --- requests ------------------------------------------------------------

    def _on_router(self) -> None:
        appended, reads = [], []
        for _ in range(DRAIN_MAX):
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            ident, body = frames[0], frames[-1]
            try:
                request_id, message = protocol.decode(body)
                if len(frames) != 2:
                    raise protocol.ProtocolError(f"{len(frames) - 1} body frames, expected 1")
                if isinstance(message, bus_messages.BusStats):
                    self._reply(ident, request_id, Ok(self._stats()))
                    continue
                if not isinstance(message.stream, str) or not STREAM_NAME.match(message.stream):
                    raise protocol.ProtocolError(f"bad stream name {message.stream!r}")
            except (protocol.ProtocolError, AttributeError) as exc:
                self.log.warning("malformed request: %s", exc)
                self._reply(ident, 0, Error(ErrorCode.PROTOCOL, str(exc)))
                continue
            try:
                if isinstance(message, bus_messages.BusPublish):
                    entry = self._append(ident, request_id, message)
                    if entry is not None:
                        appended.append(entry)
                else:
                    reads.append((ident, request_id, message))
            except Exception as exc:
                self.log.exception("%s failed", message.TAG)
                self._reply(ident, request_id, Error(ErrorCode.INTERNAL, repr(exc)))
        if appended:
            self._commit(appended)
        for ident, request_id, message in reads:
            try:
                reply = self._read(message)
            except Exception as exc:
                self.log.exception("%s failed", message.TAG)
                reply = Error(ErrorCode.INTERNAL, repr(exc))
            self._reply(ident, request_id, reply)

    def _append(self, ident: bytes, request_id: int, message: bus_messages.BusPublish):
        """Buffer a publish in its log; None if it was answered with an error instead."""
        problem = self._check_publish(message)
        if problem:
            self._reply(ident, request_id, Error(ErrorCode.BAD_REQUEST, problem))
            return None
        if not self._usable(message.stream):
            self._reply(ident, request_id, Error(
                ErrorCode.UNAVAILABLE, "the bus cannot write its log", 1))
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
        if not isinstance(message.data, bytes):
            return "data: must be bytes"
        return None

    def _commit(self, appended: list) -> None:
        """Group commit: one fdatasync per stream, then acks, then fan-out."""
        failed: set[str] = set()
        for stream in {stream for _, _, stream, _ in appended}:
            started = time.perf_counter()
            try:
                self.logs[stream].commit()
            except OSError as exc:
                self.log.error("stream %r: cannot write the log (%s); refusing publishes "
                               "until it can", stream, exc)
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
                self._reply(ident, request_id, Error(
                    ErrorCode.UNAVAILABLE, "the bus cannot write its log", 1))
                continue
            self._reply(ident, request_id, Ok([record.position, record.time_ms]))
            self.pub.send_multipart([bus_messages.topic_for(stream), protocol.encode(
                bus_messages.BusRecord(*record))])

    def _stats(self) -> dict:
        streams = {}
        for stream, log in self.logs.items():
            directory = self.config.log_dir / stream
            size = sum(entry.stat().st_size for entry in os.scandir(directory)
                       if entry.name.endswith(".log"))
            streams[stream] = {"log_id": log.log_id, "records": log.committed_end,
                               "bytes": size, "writable": stream not in self.broken}
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
        self.log.warning("stream %r: log reopened at position %d (%s)", stream,
                         log.committed_end, report.reason or "clean")
        return True

    def _read(self, message):
        if not self._usable(message.stream):
            return Error(ErrorCode.UNAVAILABLE, "the bus cannot read its log", 1)
        log = self._log(message.stream)
        if isinstance(message, bus_messages.BusFetch):
            if type(message.from_position) is not int or message.from_position < 0:
                return Error(ErrorCode.BAD_REQUEST, "from_position: must be a non-negative int")
            limit = message.max_records if type(message.max_records) is int else 1
            records = log.read(message.from_position, max(1, min(limit, FETCH_MAX_RECORDS)),
                               FETCH_MAX_BYTES)
            return Ok([log.log_id, log.committed_end, [list(r) for r in records]])
        if isinstance(message, bus_messages.BusSeek):
            if type(message.time_ms) is not int:
                return Error(ErrorCode.BAD_REQUEST, "time_ms: must be an integer")
            return Ok(log.position_at_time(message.time_ms))
        if isinstance(message, bus_messages.BusInfo):
            return Ok([log.log_id, log.committed_end])
        return Error(ErrorCode.PROTOCOL, f"the bus does not handle {message.TAG}")

    def _reply(self, ident: bytes, request_id: int, message) -> None:
        self.router.send_multipart([ident, protocol.encode(message, request_id)])


def main() -> int:
    setup_logging("bus")
    return run_actor(BusActor(BusConfig.from_env()), "grades: bus")


if __name__ == "__main__":
    sys.exit(main())
