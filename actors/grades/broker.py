"""The broker actor: the reading side of a replica's link to the bus.

Storage publishes its batches to the bus itself (a set's path is storage -> bus
-> storage, see actors.grades.storage); the broker subscribes to the stream and
delivers records to storage strictly in log order: a record that arrives ahead
of the next expected position means some were lost on the way (PUB drops under
load, the bus restarted), so it fetches the gap from the log. The same fetch
replays history when storage asks to CatchUp from a position (after a restore,
a restart, or a new broker). It also tells storage whether the bus is up (its
heartbeats) every STATUS_EVERY_MS.

Every record is delivered, storage's own included: storage skips an own record
it merged on the bus's ack, and merges one whose ack never came (bus crash,
publish timed out), so nothing is lost and nothing applied twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import Sequence
from typing import Any, NamedTuple

import zmq

from actors.bus import messages as bus_messages
from actors.grades import messages
from actors.grades.config import Config
from actors.runtime import protocol
from actors.runtime.base import Actor, monotonic_ms, run_actor, setup_logging
from actors.runtime.protocol import ErrorCode
from actors.runtime.security import Curve

__all__ = ["BrokerActor", "main"]

IDLE, CATCHING_UP, LIVE = "idle", "catching_up", "live"
REFUSED = "refused"
"""The log no longer holds storage's position (Gone sent): nothing is fetched until a new
CatchUp; the status still reports the position, so storage does not ask again at once."""

STATUS_EVERY_MS = 250
BUS_DEAD_AFTER_MS = 1500
"""No heartbeat from the bus for this long: it is down."""
FETCH_TIMEOUT_MS = 3000
FETCH_MAX_RECORDS = 1000
SUB_QUEUE_MAX = 100_000
"""Records ZMQ may queue for us; beyond, PUB drops them and the gap is fetched from the log."""
LIVE_BUFFER_MAX = 100_000
"""Records kept while a fetch runs; beyond this they are fetched from the log instead."""


def _well_formed(record: Sequence[Any]) -> bool:
    """A log record as [position, time_ms, origin, seq, data] with the right types."""
    return (
        len(record) == 5
        and type(record[0]) is int
        and record[0] >= 0
        and isinstance(record[2], str)
        and type(record[3]) is int
        and isinstance(record[4], bytes)
    )


class BrokerActor(Actor):
    name = "broker"

    def __init__(self, config: Config) -> None:
        super().__init__(Curve.load(config.curve_dir))
        self.log = logging.getLogger(f"broker[{config.replica_id}]")
        self.config = config
        self.stream = config.stream
        self.session = secrets.token_hex(6)
        self.mode = IDLE
        self.catchup_id = 0
        self.next_position = -1
        self.expect_log_id = ""
        self.log_id = ""
        self.bus_end = -1
        self.bus_up = False
        self.bus_heard_ms = 0
        self.buffer: list[Sequence[Any]] = []  # live records held while a fetch is running
        self.fetch_id = 0
        self.fetch_sent_ms = 0
        self._fetch_ids = iter(range(1, 1 << 31))
        self._status_ms = 0
        self._probe_id = 0
        self._records: list[Sequence[Any]] = []  # live records of one SUB drain

    # --- lifecycle ---------------------------------------------------------

    def setup(self) -> None:
        self.storage = self.client_socket(zmq.DEALER)
        self.serve(self.storage, prefix="storage_")
        self.storage.connect(self.config.storage_endpoint)
        self.bus = self._bus_socket()
        self.sub = self.client_socket(zmq.SUB)
        self.serve(self.sub, prefix="sub_")
        self.sub.rcvhwm = SUB_QUEUE_MAX
        self.sub.setsockopt(zmq.SUBSCRIBE, bus_messages.topic_for(self.stream))
        self.sub.connect(self.config.bus_pub_url)
        self.serve_liveness(self.config.broker_liveness_endpoint)
        self.log.info(
            "bridging %s to bus %s / %s (stream %r)",
            self.config.storage_endpoint,
            self.config.bus_url,
            self.config.bus_pub_url,
            self.stream,
        )

    def _bus_socket(self) -> zmq.Socket[bytes]:
        sock = self.client_socket(zmq.DEALER)
        self.serve(sock, prefix="bus_")
        sock.immediate = True
        sock.connect(self.config.bus_url)
        return sock

    def on_tick(self) -> None:
        now = monotonic_ms()
        if self.bus_up and now - self.bus_heard_ms > BUS_DEAD_AFTER_MS and not self._waiting(now):
            self._bus_lost(now)
        if self.fetch_id and now - self.fetch_sent_ms > FETCH_TIMEOUT_MS:
            self.fetch_id = 0
            self._fetch()
        if now - self._status_ms >= STATUS_EVERY_MS:
            self._status_ms = now
            if not self.bus_up:
                self._probe()
            self._send_storage(
                messages.BrokerStatus(
                    self.session,
                    self.bus_up,
                    self.log_id,
                    self.bus_end,
                    self.next_position if self.mode != IDLE else -1,
                )
            )

    def _waiting(self, now: int) -> bool:
        """A fetch sent to the bus is still within its timeout.

        NOTE: a bus busy in a long fsync sends no heartbeat, but it is not gone while
        what we sent it may still be answered (storage judges its publishes the same way).
        """
        return self.fetch_id != 0 and now - self.fetch_sent_ms < FETCH_TIMEOUT_MS

    def _probe(self) -> None:
        """Ask the bus about our stream: it creates the stream and starts heartbeating it."""
        self._probe_id = next(self._fetch_ids)
        self._send_bus(bus_messages.BusInfo(self.stream), self._probe_id)

    def _bus_lost(self, now: int) -> None:
        self.bus_up = False
        self.log.warning(
            "bus silent for %d ms: unreachable until its heartbeat is back",
            now - self.bus_heard_ms,
        )
        # Lazy pirate: drop whatever is queued for the dead connection.
        self.bus = self.replace_socket(self.bus, zmq.DEALER)
        self.bus.immediate = True
        self.bus.connect(self.config.bus_url)
        self.fetch_id = 0

    def _send_storage(self, message: NamedTuple) -> None:
        try:
            self.storage.send(protocol.encode(message), zmq.NOBLOCK)
        except zmq.Again:
            pass  # storage is gone and its queue full: a new one resyncs with CatchUp

    def _send_bus(self, message: NamedTuple, request_id: int) -> bool:
        try:
            self.bus.send(protocol.encode(message, request_id), zmq.NOBLOCK)
            return True
        except zmq.Again:
            return False

    # --- from storage ------------------------------------------------------

    def after_drain(self, sock: zmq.Socket[bytes]) -> None:
        if sock is self.sub and self._records:
            records, self._records = self._records, []
            self._live(records)

    def storage_catch_up(
        self, _ident: bytes | None, _request_id: int, message: messages.CatchUp
    ) -> None:
        self._catch_up(message)

    def _catch_up(self, message: messages.CatchUp) -> None:
        self.log.info("storage asks for the log from position %d", message.from_position)
        self.mode = CATCHING_UP
        self.catchup_id = message.catchup_id
        self.next_position = message.from_position
        self.expect_log_id = message.log_id
        self.buffer.clear()
        self.fetch_id = 0
        self._fetch()

    # --- from the bus ------------------------------------------------------

    def _fetch(self) -> None:
        if self.fetch_id or self.mode in (IDLE, REFUSED) or not self.bus_up:
            return
        self.fetch_id = next(self._fetch_ids)
        self.fetch_sent_ms = monotonic_ms()
        if not self._send_bus(
            bus_messages.BusFetch(self.stream, self.next_position, FETCH_MAX_RECORDS), self.fetch_id
        ):
            self.fetch_id = 0

    def bus_ok(self, _ident: bytes | None, request_id: int, message: protocol.Ok) -> None:
        self._bus_reply(request_id, message, ok=True)

    def bus_error(self, _ident: bytes | None, request_id: int, message: protocol.Error) -> None:
        self._bus_reply(request_id, message, ok=False)

    def _bus_reply(self, request_id: int, message: protocol.Ok | protocol.Error, ok: bool) -> None:
        """Match a bus reply to what it answers: the probe or the fetch."""
        self.bus_heard_ms = monotonic_ms()
        if request_id and request_id == self._probe_id:
            if isinstance(message, protocol.Ok):
                self._heartbeat(bus_messages.BusHeartbeat(*message.result))
        elif request_id and request_id == self.fetch_id:
            self.fetch_id = 0
            result = message.result if isinstance(message, protocol.Ok) else None
            if (
                isinstance(result, list)
                and len(result) == 3
                and isinstance(result[0], str)
                and type(result[1]) is int
                and isinstance(result[2], list)
                and all(isinstance(r, list) and _well_formed(r) for r in result[2])
            ):
                self._fetched(*result)
            elif isinstance(message, protocol.Error) and message.code == ErrorCode.NOT_FOUND:
                self._gone(message.reason)
            else:
                self.log.warning("bus refused or garbled a fetch: %.200r", message)

    def _gone(self, reason: str) -> None:
        """Retention deleted the position storage needs: refuse loudly, never skip ahead."""
        self.log.error("REFUSED: %s", reason)
        self.mode = REFUSED
        self.buffer.clear()
        self._send_storage(messages.Gone(self.catchup_id, -1, reason))

    def _fetched(self, log_id: str, end: int, records: list[Sequence[Any]]) -> None:
        if self.expect_log_id and log_id != self.expect_log_id:
            self.log.error(
                "the bus log is %s, not %s: replaying it from the start", log_id, self.expect_log_id
            )
            self.next_position = 0
        self.expect_log_id = ""
        self.log_id = log_id
        self._deliver(records)
        if self.next_position < end:
            self._fetch()
            return
        held, self.buffer = self.buffer, []
        held.sort(key=lambda record: record[0])
        if not self._deliver(held):
            self._fetch()
            return
        if self.mode == CATCHING_UP:
            self.mode = LIVE
            self.log.info("live at log position %d", self.next_position)
            self._send_storage(messages.Live(self.catchup_id, self.next_position, self.log_id))

    def sub_bus_record(
        self, _ident: bytes | None, _request_id: int, message: bus_messages.BusRecord
    ) -> None:
        self.bus_heard_ms = monotonic_ms()
        if _well_formed(message):
            self._records.append(message)
        else:
            self.log.warning("dropped a malformed record: %.200r", message)

    def sub_bus_heartbeat(
        self, _ident: bytes | None, _request_id: int, message: bus_messages.BusHeartbeat
    ) -> None:
        if isinstance(message.log_id, str) and type(message.end) is int:
            self._heartbeat(message)

    def _live(self, records: list[Sequence[Any]]) -> None:
        if self.mode in (IDLE, REFUSED):
            return
        if self.mode == CATCHING_UP or self.fetch_id:
            if len(self.buffer) < LIVE_BUFFER_MAX:
                self.buffer.extend(records)
        elif not self._deliver(records):
            self._fetch()

    def _heartbeat(self, beat: bus_messages.BusHeartbeat) -> None:
        self.bus_heard_ms = monotonic_ms()
        if not self.bus_up:
            self.bus_up = True
            self.log.info("bus is up (log %s, end %d)", beat.log_id, beat.end)
            self._status_ms = 0  # tell storage at this turn's tick, not up to 250 ms later
        if self.log_id and beat.log_id != self.log_id and self.mode != IDLE:
            self.log.error(
                "the bus log changed (%s -> %s): replaying it from the start",
                self.log_id,
                beat.log_id,
            )
            self.next_position = 0
            self.fetch_id = 0
        self.log_id, self.bus_end = beat.log_id, beat.end
        if self.mode == CATCHING_UP or (self.mode == LIVE and beat.end > self.next_position):
            self._fetch()  # a catch-up waiting for the bus, or records we never saw

    def _deliver(self, records: list[Sequence[Any]]) -> bool:
        """Hand records at next_position onwards to storage; False at a gap."""
        out: list[list[Any]] = []
        contiguous = True
        for record in records:
            position = record[0]
            if position < self.next_position:
                continue
            if position > self.next_position:
                contiguous = False
                self.buffer.append(record)
                continue
            self.next_position = position + 1
            out.append([position, record[3], record[4]])
        if out or records:
            self._send_storage(messages.Apply(self.catchup_id, out, self.next_position))
        return contiguous


def main() -> int:
    setup_logging("broker")
    config = Config.from_env(os.environ, [])
    return run_actor(BrokerActor(config), f"grades: broker replica={config.replica_id}")


if __name__ == "__main__":
    sys.exit(main())
