"""The JetStream broker: the broker actor's job with a NATS JetStream stream as the log.

replica.py runs it instead of actors.grades.broker when BUS_URL lists nats://
servers. It speaks the same grades messages to the storage actor (Publish and
CatchUp in; BrokerStatus, Acked, Failed, Apply, Live and Gone out), so storage
and the HTTP contract do not know which log they use. nats-py is asyncio only,
so this is an AsyncActor with a DEALER to storage instead of a zmq poll loop.

Positions and log ids: see actors.grades.jetstream.stream (position p is stream
sequence p + 1; a recreated stream is another log, replayed from its start).

Publishing: each batch goes to ``<stream>.<replica>`` with ``Nats-Msg-Id:
<replica>:<seq>``. A publish whose ack does not come within an attempt is sent
again with the same id until PUBLISH_DEADLINE_S; the stream's duplicate window
drops the copy, so it is stored once. A refusal (no responders: no stream
leader; a JetStream API error) that never got past a lost ack is UNAVAILABLE
(503); an attempt that timed out without a later answer is UNKNOWN_OUTCOME (504).

Reading: one ephemeral push consumer without acks from the sequence storage
needs (actors.grades.jetstream.stream.consumer_config). JetStream would silently
start it elsewhere if that sequence were below the first stored one or past the
end, so the start is checked first (start_problem), and every delivered sequence
is checked against the next expected one: a gap, a consumer gone silent (no
heartbeat) or stalled (records exist past ours, none arrive), or a reconnect,
and a new consumer starts from the next position. Own records are skipped once
merged, as the built-in broker does; the server does not filter them.

NOTE: publishing and reading share one state (the mode storage asked for, the next
sequence, the batches in flight: an own record seen in the stream before its ack
acknowledges it), so they are one actor in one file. What needs none of that state
lives beside it: the connection and the stream's last answer (bus_up, log id, its
end) in link.py, the stream's shape and the position mapping in stream.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
import time
from typing import NamedTuple

import nats
import nats.errors
import nats.js.errors
import zmq
import zmq.asyncio
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from actors.grades import messages
from actors.grades.config import Config
from actors.grades.jetstream.link import PROBE_EVERY_S, StreamLink
from actors.grades.jetstream.retention import TRIM_EVERY_S
from actors.grades.jetstream.stream import (
    CONSUMER_HEARTBEAT_S,
    consumer_config,
    log_id_of,
    position_of,
    start_problem,
    stream_name,
)
from actors.runtime import protocol
from actors.runtime.async_actor import AsyncActor, run_async_actor
from actors.runtime.base import setup_logging
from actors.runtime.protocol import ErrorCode
from actors.runtime.security import Curve

__all__ = ["JetStreamBroker", "main"]

STATUS_EVERY_S = 0.25
NATS_CLOSE_TIMEOUT_S = 2.0
PUBLISH_ATTEMPT_S = 0.8
PUBLISH_DEADLINE_S = 2.4
"""Resends of one batch stop here; below storage's PUBLISH_TIMEOUT_MS (3 s)."""
CONSUMER_SILENT_S = 3.0
"""No message or heartbeat from the consumer for this long: it is gone; make another."""
CONSUMER_STALL_S = 1.5
"""The stream has records past ours, yet none arrived for this long: recreate the consumer."""
PENDING_MSGS = 1_000_000
PENDING_BYTES = 1 << 30
"""What nats-py may queue for our callback before it drops (and we see a gap)."""


class JetStreamBroker(AsyncActor):
    name = "broker"

    def __init__(self, config: Config):
        super().__init__(Curve.load(config.curve_dir))
        self.log = logging.getLogger(f"broker[{config.replica_id}]")
        self.config = config
        self.stream = stream_name(config.stream)
        self.origin = str(config.replica_id)
        self.subject = f"{config.stream}.{self.origin}"
        self.session = secrets.token_hex(6)
        self.link = StreamLink(config, self.log, self._reconnected, self._stream_recreated)
        # consuming
        self.mode = "idle"  # idle | catching_up | live | refused (the stream lacks our position)
        self.catchup_id = 0
        self.next_seq = 0  # next stream sequence to deliver
        self.target_seq = 0  # catching up until next_seq passes this
        self.expect_log_id = ""  # the log storage's position refers to ("" for any)
        self.consumer: tuple[Subscription, str] | None = None  # subscription, consumer name
        self.generation = 0  # of the consumer: messages of an older one are ignored
        self.consumer_heard = 0.0  # monotonic time of its last message or heartbeat
        self.consumer_fed = 0.0  # ... of its last record (heartbeats keep coming when stuck)
        self.out: list[list[int | bytes]] = []  # [position, batch seq, data] for the next Apply
        self.out_scheduled = False
        self.rebuild = asyncio.Event()
        # publishing
        self.inflight: set[int] = set()
        self.acked_own: set[int] = set()

    # --- lifecycle ---------------------------------------------------------

    async def setup(self) -> None:
        if self.ctx is None:
            raise RuntimeError("setup runs inside AsyncActor.main, which makes the context")
        self.storage = self.ctx.socket(zmq.DEALER)
        self.storage.linger = 0
        self.storage.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        if self.curve is not None:  # storage's ROUTER admits CURVE clients only
            self.curve.connect_as_client(self.storage)
        self.storage.connect(self.config.storage_endpoint)
        self._sockets.append(self.storage)
        self.spawn(self._receive_storage(), "storage receive")
        self.serve(self.config.broker_liveness_endpoint)  # answers the supervisor's Pings
        self.spawn(self._connect(), "nats connect")
        self.every(STATUS_EVERY_S, self._status, "status")
        self.spawn(self._consumer_keeper(), "consumer keeper")
        self.log.info(
            "bridging %s to JetStream %s (stream %s, subject %s)",
            self.config.storage_endpoint,
            self.config.bus_url,
            self.stream,
            self.subject,
        )

    async def teardown(self) -> None:
        await self.link.close(NATS_CLOSE_TIMEOUT_S)

    async def _connect(self) -> None:
        await self.link.connect()
        self.every(PROBE_EVERY_S, self.link.probe, "stream probe")
        if self.link.trimmer.enabled:
            self.every(TRIM_EVERY_S, self.link.trim, "retention")

    def _reconnected(self) -> None:
        self.rebuild.set()

    def _stream_recreated(self, old: str, new: str) -> None:
        """The probe saw another stream under our name: a reader replays it from its start."""
        if self.mode in ("catching_up", "live"):
            self.log.error(
                "stream %s was recreated (%s -> %s): replaying it from the start",
                self.stream,
                old,
                new,
            )
            self.next_seq = 1
            self.rebuild.set()

    async def _status(self) -> None:
        self._send(
            messages.BrokerStatus(
                self.session,
                self.link.bus_up,
                self.link.log_id,
                position_of(self.link.last_seq + 1),
                position_of(self.next_seq) if self.mode != "idle" else -1,
            )
        )

    def _send(self, message: NamedTuple) -> None:
        try:
            self.storage.send(protocol.encode(message), zmq.NOBLOCK)
        except zmq.Again:
            pass  # storage is gone and its queue full: a new one resyncs with CatchUp

    # --- from storage ------------------------------------------------------

    async def _receive_storage(self) -> None:
        while True:
            body = await self.storage.recv()
            try:
                pairs = protocol.unbatch(*protocol.decode(body))
            except protocol.ProtocolError as exc:
                self.log.warning("malformed message from storage: %s", exc)
                continue
            for _request_id, message in pairs:
                handler = getattr(self, f"handle_{protocol.tag_of(message)}", None)
                if handler is None:
                    self.log.warning("broker does not handle %s", protocol.tag_of(message))
                else:
                    handler(message)

    def handle_publish(self, message: messages.Publish) -> None:
        if not self.link.bus_up:
            self.log.warning(
                "batch %d refused, stream unreachable; requests %s", message.seq, message.traces
            )
            self._send(
                messages.Failed(
                    [message.seq], ErrorCode.UNAVAILABLE, "the JetStream stream is unreachable"
                )
            )
            return
        self.inflight.add(message.seq)
        self.spawn(self._publish(message), "publish")

    async def _publish(self, message: messages.Publish) -> None:
        headers = {"Nats-Msg-Id": f"{self.origin}:{message.seq}"}
        deadline = time.monotonic() + PUBLISH_DEADLINE_S
        timed_out, reason = False, ""
        while time.monotonic() < deadline and message.seq in self.inflight:
            attempt = min(PUBLISH_ATTEMPT_S, max(0.05, deadline - time.monotonic()))
            try:
                await self.link.nats()[1].publish(
                    self.subject, message.data, timeout=attempt, headers=headers
                )
                self._acked(message.seq)
                return
            except (nats.errors.TimeoutError, TimeoutError):
                timed_out, reason = True, "JetStream did not confirm the write in time"
            except (nats.errors.Error, nats.js.errors.Error) as exc:
                reason = f"JetStream refused the write: {exc}"
                await asyncio.sleep(0.1)
        if message.seq not in self.inflight:
            return  # seen in the stream meanwhile: acknowledged there
        self.inflight.discard(message.seq)
        code = ErrorCode.UNKNOWN_OUTCOME if timed_out else ErrorCode.UNAVAILABLE
        self.log.warning(
            "batch %d failed (%s: %s); requests %s", message.seq, code, reason, message.traces
        )
        self._send(messages.Failed([message.seq], code, reason))

    def _acked(self, seq: int) -> None:
        if seq in self.inflight:
            self.inflight.discard(seq)
            self.acked_own.add(seq)
            self._send(messages.Acked([seq]))

    def handle_catch_up(self, message: messages.CatchUp) -> None:
        self.log.info("storage asks for the log from position %d", message.from_position)
        self.mode = "catching_up"
        self.catchup_id = message.catchup_id
        self.next_seq = message.from_position + 1
        self.expect_log_id = message.log_id
        self.inflight.clear()  # their outcomes would now be misleading; the stream has them
        self.acked_own.clear()
        self.out.clear()
        self.rebuild.set()

    # --- reading: one consumer of the stream, kept honest ----------------------

    async def _consumer_keeper(self) -> None:
        """(Re)create the consumer when asked to, when it falls silent or stalls."""
        while True:
            try:
                await asyncio.wait_for(self.rebuild.wait(), CONSUMER_HEARTBEAT_S / 2)
            except TimeoutError:
                pass
            if self.mode in ("idle", "refused") or not self.link.bus_up:
                continue
            now = time.monotonic()
            silent = self.consumer is not None and now - self.consumer_heard > CONSUMER_SILENT_S
            stalled = (
                self.consumer is not None
                and self.link.last_seq >= self.next_seq
                and now - self.consumer_fed > CONSUMER_STALL_S
            )
            if self.consumer is None or self.rebuild.is_set() or silent or stalled:
                if silent or stalled:
                    self.log.warning(
                        "consumer %s at sequence %d; making another",
                        "silent" if silent else "stalled",
                        self.next_seq,
                    )
                self.rebuild.clear()
                await self._start_consumer()

    async def _start_consumer(self) -> None:
        await self._stop_consumer()
        nc, js = self.link.nats()
        try:
            info = await js.stream_info(self.stream)
        except (nats.errors.Error, TimeoutError) as exc:
            self.log.warning("cannot read stream %s to start a consumer (%s)", self.stream, exc)
            self.rebuild.set()
            return
        log_id = log_id_of(self.stream, info.created)
        if self.expect_log_id and log_id != self.expect_log_id:
            self.log.error(
                "the stream is %s, not %s: replaying it from the start", log_id, self.expect_log_id
            )
            self.next_seq = 1
        self.expect_log_id = ""
        self.link.log_id = log_id
        first, last = info.state.first_seq, info.state.last_seq
        problem = start_problem(self.next_seq, first, last)
        if problem == "gone":
            self._gone(first)
            return
        if problem == "past_end":
            self.log.error(
                "position %d is past the end of stream %s (last sequence %d): "
                "replaying it from the start",
                position_of(self.next_seq),
                self.stream,
                last,
            )
            self.next_seq = 1
        self.target_seq = last
        inbox = nc.new_inbox()
        self.generation += 1
        generation = self.generation

        async def deliver(msg: Msg) -> None:
            if generation == self.generation:
                self._on_message(msg)

        sub = await nc.subscribe(
            inbox, cb=deliver, pending_msgs_limit=PENDING_MSGS, pending_bytes_limit=PENDING_BYTES
        )
        try:
            consumer = await js.add_consumer(
                self.stream, consumer_config(self.config.stream, inbox, self.next_seq)
            )
        except (nats.errors.Error, TimeoutError) as exc:
            self.log.warning("cannot create a consumer at sequence %d (%s)", self.next_seq, exc)
            await sub.unsubscribe()
            self.rebuild.set()
            return
        self.consumer = (sub, consumer.name)
        self.consumer_heard = self.consumer_fed = time.monotonic()
        self._maybe_live()

    async def _stop_consumer(self) -> None:
        if self.consumer is None:
            return
        sub, name = self.consumer
        self.consumer = None
        self.generation += 1
        try:
            await sub.unsubscribe()
            await self.link.nats()[1].delete_consumer(self.stream, name)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError):
            pass  # the server drops it after CONSUMER_INACTIVE_S anyway

    def _gone(self, first: int) -> None:
        reason = (
            f"stream {self.stream} starts at sequence {first}: position "
            f"{position_of(self.next_seq)} is older than what it keeps (purged?)"
        )
        self.log.error("REFUSED: %s", reason)
        self._send(messages.Gone(self.catchup_id, position_of(first), reason))
        self.mode = "refused"  # reports our position, so storage does not ask again at once

    def _on_message(self, msg: Msg) -> None:
        self.consumer_heard = time.monotonic()
        if not msg.data and msg.headers and msg.headers.get("Status") == "100":
            return  # idle heartbeat
        self.consumer_fed = self.consumer_heard
        seq = msg.metadata.sequence.stream
        if seq < self.next_seq:
            return
        if seq > self.next_seq:
            self.log.warning("gap in the stream: got sequence %d, expected %d", seq, self.next_seq)
            self.rebuild.set()
            return
        self.next_seq = seq + 1
        origin, _, batch = (msg.headers or {}).get("Nats-Msg-Id", "").partition(":")
        if origin == self.origin and batch.isdigit():
            own = int(batch)
            if own in self.inflight:  # seen in the stream before its ack
                self._acked(own)
                self.acked_own.discard(own)
                self._flush_later()
                return
            if own in self.acked_own:
                self.acked_own.discard(own)
                self._flush_later()
                return
        self.out.append([position_of(seq), int(batch) if batch.isdigit() else 0, msg.data])
        self._flush_later()

    def _flush_later(self) -> None:
        if not self.out_scheduled:
            self.out_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self.out_scheduled = False
        if self.mode not in ("catching_up", "live"):
            return
        records, self.out = self.out, []
        self._send(messages.Apply(self.catchup_id, records, position_of(self.next_seq)))
        self._maybe_live()

    def _maybe_live(self) -> None:
        if self.mode == "catching_up" and self.next_seq > self.target_seq:
            self.mode = "live"
            self.log.info("live at stream sequence %d", self.next_seq)
            self._send(messages.Live(self.catchup_id, position_of(self.next_seq), self.link.log_id))


def main() -> int:
    setup_logging("broker")
    config = Config.from_env(os.environ, [])
    return run_async_actor(JetStreamBroker(config), f"grades: broker replica={config.replica_id}")


if __name__ == "__main__":
    sys.exit(main())
