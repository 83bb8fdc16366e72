"""The reading half of the JetStream broker: one consumer of the stream, kept honest.

A mixin of actors.grades.jetstream_broker.JetStreamBroker, apart for size: it uses
the broker's connection (``nc``, ``js``), stream state (``last_seq``, ``log_id``)
and mode, and sends Apply, Live and Gone to storage with ``_send``.

The consumer is an ephemeral push consumer without acks from the sequence
storage needs (actors.grades.jetstream_stream.consumer_config). JetStream would
silently start it elsewhere if that sequence were below the first stored one or
past the end, so the start is checked first (start_problem), and every delivered
sequence is checked against the next expected one: a gap, a consumer gone silent
(no heartbeat) or stalled (records exist past ours, none arrive), or a reconnect,
and a new consumer starts from the next position. Own records are skipped once
merged, as the built-in broker does; the server does not filter them.
"""

from __future__ import annotations

import asyncio
import time

import nats.errors
import nats.js.errors

from actors.grades import messages
from actors.grades.jetstream_stream import (
    CONSUMER_HEARTBEAT_S,
    consumer_config,
    log_id_of,
    position_of,
    start_problem,
)

__all__ = ["ConsumerMixin"]

CONSUMER_SILENT_S = 3.0
"""No message or heartbeat from the consumer for this long: it is gone; make another."""
CONSUMER_STALL_S = 1.5
"""The stream has records past ours, yet none arrived for this long: recreate the consumer."""
PENDING_MSGS = 1_000_000
PENDING_BYTES = 1 << 30
"""What nats-py may queue for our callback before it drops (and we see a gap)."""


class ConsumerMixin:
    """Consumer methods of JetStreamBroker; see there for the state they use."""

    async def _consumer_keeper(self) -> None:
        """(Re)create the consumer when asked to, when it falls silent or stalls."""
        while True:
            try:
                await asyncio.wait_for(self.rebuild.wait(), CONSUMER_HEARTBEAT_S / 2)
            except TimeoutError:
                pass
            if self.mode in ("idle", "refused") or not self.bus_up:
                continue
            now = time.monotonic()
            silent = self.consumer is not None and now - self.consumer_heard > CONSUMER_SILENT_S
            stalled = (
                self.consumer is not None
                and self.last_seq >= self.next_seq
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
        try:
            info = await self.js.stream_info(self.stream)
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
        self.log_id = log_id
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
        inbox = self.nc.new_inbox()
        self.generation += 1
        generation = self.generation

        async def deliver(msg) -> None:
            if generation == self.generation:
                self._on_message(msg)

        sub = await self.nc.subscribe(
            inbox, cb=deliver, pending_msgs_limit=PENDING_MSGS, pending_bytes_limit=PENDING_BYTES
        )
        try:
            consumer = await self.js.add_consumer(
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
            await self.js.delete_consumer(self.stream, name)
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

    def _on_message(self, msg) -> None:
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
            self._send(messages.Live(self.catchup_id, position_of(self.next_seq), self.log_id))
