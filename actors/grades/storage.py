"""The storage actor: the one process that owns a replica's UserGrade map.

HTTP workers send it Set/Get/Snapshot requests over its ROUTER; its broker
sends it what the bus log delivers. Sets are handled in batches: every Set
taken from the socket in one loop turn is stamped with the hybrid clock and
published as one log record; when the log reports the record durable the
batch is merged and every caller gets its merged record. A rejected set
changes nothing. Without a bus (BUS_URL=none) sets are merged at once.

Publishing: on the built-in bus storage holds a DEALER to the bus and sends each
batch as a BusPublish itself, so a set's path is storage -> bus -> storage (the
broker only reads: the subscription, gaps, catch-up). The broker then delivers
every record, own ones too; an own record merged on the bus's ack is skipped by
its (seq, position), and one whose ack never came (bus killed, publish timed
out) is merged from the log. On JetStream (nats-py is asyncio only) batches go
through the broker as Publish, answered Acked/Failed, and that broker leaves
out the own records it saw acknowledged.

Phases: RESTORING (loading a peer's backup) -> CATCHING_UP (the broker replays
the log from the backup's position) -> READY. Until READY every request but
Status is answered UNAVAILABLE.

NOTE: ~620 lines, over the ~400 of STYLE.md: this is one state machine (phases,
writes in flight and their acks, catch-up, backups being read) and splitting its
handlers across files would hide how they interleave (an own batch is completed
by the bus's ack or by the log, whichever comes first); what is not the state machine lives
beside it (records, hlc, loading, restore, snapshots, backup).
"""

from __future__ import annotations

import gc
import itertools
import logging
import os
import secrets
import sys
from typing import Any, NamedTuple

import msgpack
import zmq

from actors.bus import messages as bus_messages
from actors.grades import messages, snapshot_file
from actors.grades.config import Config
from actors.grades.hlc import HybridClock, stamp_ms
from actors.grades.loading import RowSource, TableLoad
from actors.grades.records import GradeTable, check_change
from actors.grades.restore import BackupDownload
from actors.runtime import protocol
from actors.runtime.base import Actor, monotonic_ms, now_ms, run_actor, setup_logging
from actors.runtime.protocol import Error, ErrorCode, Ok
from actors.runtime.security import Curve

__all__ = ["StorageActor", "main"]

RESTORING, CATCHING_UP, READY = "restoring", "catching_up", "ready"

PUBLISH_TIMEOUT_MS = 3000
"""A batch not acknowledged by then is answered UNKNOWN_OUTCOME (it may yet land)."""
BUS_SILENT_MS = 1500
"""The bus answered none of our publishes for this long: only the broker's view (its
heartbeats) says whether it is up."""
ACKED_OWN_PRUNE = 64
"""Own batches merged on the bus's ack and not yet seen in the log, past which the ones
the log has passed (a replaced log) are forgotten."""
BATCHES_IN_FLIGHT = 2
"""Publishes awaiting the bus at once. Sets arriving meanwhile wait in one batch that
leaves when an ack frees a slot: under load a log record carries many sets (group commit
clocked by the acks) instead of one or two, at no cost in latency while the bus keeps up."""
BROKER_STALE_MS = 1500
"""No BrokerStatus for this long: treat the bus as unreachable."""
SNAPSHOT_IDLE_MS = 60_000
"""A backup reader that stops pulling for this long loses its snapshot."""
SNAPSHOT_MAX_ROWS = 20_000
"""Rows of one SnapshotNext reply at most."""
RETRY_AFTER_S = 1

_QueuedSet = tuple[bytes, int, str, list[int | None], int, str]
"""A set waiting for the bus: (ident, request_id, key, values, stamp, trace)."""


class _Snapshot:
    """Keys listed when the backup began; rows are read as the reader pulls."""

    def __init__(self, keys: list[str], meta: dict[str, Any]) -> None:
        self.keys = keys
        self.meta = meta
        self.offset = 0
        self.touched_ms = monotonic_ms()


class StorageActor(Actor):
    name = "storage"

    def __init__(self, config: Config) -> None:
        super().__init__(Curve.load(config.curve_dir))
        self.log = logging.getLogger(f"storage[{config.replica_id}]")
        self.config = config
        self.rid = config.replica_id
        self.table = GradeTable()
        self.hlc = HybridClock(config.clock_skew_ms)
        self.phase = RESTORING if config.replicated else READY
        self.position = 0  # next log position not yet applied
        self.log_id = ""
        # broker link
        self.broker_ident: bytes | None = None
        self.broker_session = ""
        self.broker_seen_ms = 0
        self._refusing: str | None = "replica is starting"  # logged on each change
        self._refusing_since_ms = monotonic_ms()
        self._accepted_once = False
        self._unavailable: str | None = self._refusing
        self._now_ms = now_ms()
        self.bus_up = False
        self.broker_live = False
        self.catchup_id = 0
        # sets in flight to the bus: seq -> (created_ms, [(ident, req_id, key, values, stamp)])
        self.pending: dict[int, tuple[int, list[_QueuedSet]]] = {}
        self._seqs = itertools.count(secrets.randbits(31) << 32)
        self.bus: zmq.Socket[bytes] | None = None  # our DEALER to the built-in bus
        self.bus_heard_ms = 0  # the bus's last answer to a publish of ours
        self.acked_own: dict[int, int] = {}  # seq -> log position, merged on the bus's ack
        self._batch: list[_QueuedSet] = []
        self._snapshots: dict[int, _Snapshot] = {}
        self._snapshot_ids = itertools.count(1)
        self._load: TableLoad | None = None  # a backup or snapshot being loaded
        self._restored_rows = 0
        self.sets_applied = 0  # this replica's own writes, merged
        self.remote_applied = 0  # other replicas' writes, merged from the log
        self.lag_ms = 0  # age of the last remote write when it was merged here
        self._snapshot_tried = False  # this process tried its own snapshot file already

    # --- lifecycle ---------------------------------------------------------

    def setup(self) -> None:
        self.config.run_dir.mkdir(parents=True, exist_ok=True)
        self.router = self.server_socket(zmq.ROUTER)
        self.serve(self.router)
        self.router.bind(self.config.storage_endpoint)
        self.log.info("replica %d listening on %s", self.rid, self.config.storage_endpoint)
        if not self.config.replicated:
            self.log.warning("BUS_URL=none: standalone, writes are neither durable nor replicated")
            self.log.info("ready (standalone)")
            return
        # NOTE: the table itself is str and int, which the cyclic GC does not track; it is
        # off while loading so that the parser's short-lived lists do not trigger passes.
        gc.disable()
        if not self.config.jetstream:
            self.bus = self._bus_socket()
        if self.config.next_replica_url:
            self._start_restore()
        else:
            self.log.info("no NEXT_REPLICA_URL: rebuilding from the bus log")
            self._rebuild_from_log()

    def teardown(self) -> None:
        if self._load is not None:
            self._load.cancel()
        self._fail_pending("the replica stopped before the bus confirmed the write")
        self.flush_replies()

    def poll_timeout_ms(self) -> int:
        return 5 if self._load is not None else super().poll_timeout_ms()

    def on_tick(self) -> None:
        now = monotonic_ms()
        self._unavailable = self._refusal()  # notice (and log) a change without requests
        if self._load is not None:
            self._load_step(now)
        self._expire_pending(now)
        if self._batch and (len(self.pending) < BATCHES_IN_FLIGHT or self._unavailable):
            self._flush_sets()
        self._expire_snapshots(now)
        self.flush_replies()

    # --- the socket --------------------------------------------------------

    def _bus_socket(self) -> zmq.Socket[bytes]:
        """A DEALER to the bus's ROUTER (a CURVE client if configured); ``immediate``: a
        publish while no connection is up fails at once (503) instead of queueing."""
        sock = self.client_socket(zmq.DEALER)
        self.serve(sock, prefix="bus_")
        sock.immediate = True
        sock.connect(self.config.bus_url)
        return sock

    def _send_broker(self, message: NamedTuple) -> None:
        if self.broker_ident is not None:
            self.router.send_multipart([self.broker_ident, protocol.encode(message)])

    def before_drain(self, sock: zmq.Socket[bytes]) -> None:
        self._unavailable = self._refusal()
        self._now_ms = now_ms()

    def after_drain(self, sock: zmq.Socket[bytes]) -> None:
        if self._batch and len(self.pending) < BATCHES_IN_FLIGHT:
            self._flush_sets()

    # --- requests from HTTP workers ----------------------------------------

    def _phase_reason(self) -> str:
        return f"replica is {self.phase.replace('_', ' ')}"

    def _refusal(self) -> str | None:
        """Why writes are refused now (None: accepted); each change is logged once."""
        reason = self._set_unavailable_reason()
        if reason != self._refusing:
            now = monotonic_ms()
            if reason is None:
                if self._accepted_once:
                    self.log.info(
                        "accepting writes again (refused %.1f s: %s)",
                        (now - self._refusing_since_ms) / 1000,
                        self._refusing,
                    )
                self._accepted_once = True
            elif self._accepted_once:  # not the steps of starting up
                self.log.warning("refusing writes: %s", reason)
            self._refusing, self._refusing_since_ms = reason, now
        return reason

    def _set_unavailable_reason(self) -> str | None:
        if self.phase != READY:
            return self._phase_reason()
        if not self.config.replicated:
            return None
        if self.broker_ident is None or monotonic_ms() - self.broker_seen_ms > BROKER_STALE_MS:
            return "broker is not connected"
        if not self.bus_up and not self._bus_answering():
            return "bus is unreachable"
        if not self.broker_live:
            return "replica is catching up with the bus"
        return None

    def handle_set(self, ident: bytes, request_id: int, message: messages.Set) -> None:
        if message.deadline_ms and message.deadline_ms < self._now_ms:
            return  # the caller gave up already: applying it now would surprise it
        problem = check_change(message.key, message.values)
        if problem:
            self.reply(ident, request_id, Error(ErrorCode.BAD_REQUEST, problem))
        elif self._unavailable:
            self.reply(
                ident, request_id, Error(ErrorCode.UNAVAILABLE, self._unavailable, RETRY_AFTER_S)
            )
        else:
            self._batch.append(
                (ident, request_id, message.key, message.values, self.hlc.now(), message.trace)
            )

    def _flush_sets(self) -> None:
        batch, self._batch = self._batch, []
        if not self.config.replicated:
            self._complete(batch)
            return
        if self._unavailable:  # waited for a slot, then the bus went away: nothing was sent
            self._fail(batch, ErrorCode.UNAVAILABLE, self._unavailable)
            return
        seq = next(self._seqs)
        changes = [[key, stamp, values] for _, _, key, values, stamp, _ in batch]
        traces = [trace for *_, trace in batch if trace]
        data = msgpack.packb([self.rid, changes])
        if self.log.isEnabledFor(logging.DEBUG):
            self.log.debug("batch %d: %d sets, requests %s", seq, len(batch), traces)
        if self.bus is None:
            self.pending[seq] = (monotonic_ms(), batch)
            self._send_broker(messages.Publish(seq, data, traces))
            return
        publish = bus_messages.BusPublish(self.config.stream, str(self.rid), seq, data)
        try:
            self.bus.send(protocol.encode(publish, seq), zmq.NOBLOCK)
        except zmq.Again:
            self.log.warning("batch %d refused, bus unreachable; requests %s", seq, traces)
            self._fail(batch, ErrorCode.UNAVAILABLE, "bus is unreachable")
            return
        self.pending[seq] = (monotonic_ms(), batch)

    def _bus_answering(self) -> bool:
        """The bus answered a publish of ours lately, or one is still within its timeout.

        NOTE: the bus is judged by the data path too: one busy in a long fsync sends no
        heartbeat (the broker calls it down), but it is not gone while what we sent it
        may still be answered, nor once it answers again before its next heartbeat
        reached the broker; refusing sets then would only turn them into 503s.
        """
        if self.bus is None:
            return False
        now = monotonic_ms()
        oldest = next(iter(self.pending.values()), None)
        return now - self.bus_heard_ms < BUS_SILENT_MS or (
            oldest is not None and now - oldest[0] < PUBLISH_TIMEOUT_MS
        )

    def _complete(self, items: list[_QueuedSet]) -> None:
        """Merge a durable batch and answer each caller with its merged record."""
        merge, rid = self.table.merge, self.rid
        for ident, request_id, key, values, stamp, _trace in items:
            self.reply(ident, request_id, Ok(merge(key, stamp, rid, values)))
        self.sets_applied += len(items)

    def _fail(self, items: list[_QueuedSet], code: str, reason: str) -> None:
        retry = RETRY_AFTER_S if code == ErrorCode.UNAVAILABLE else 0
        for ident, request_id, *_ in items:
            self.reply(ident, request_id, Error(code, reason, retry))

    def _fail_pending(self, reason: str) -> None:
        """Answer every batch sent on and not yet confirmed UNKNOWN_OUTCOME (it may still
        land: the catch-up from the bus log applies it then)."""
        pending, self.pending = self.pending, {}
        for _, items in pending.values():
            self._fail(items, ErrorCode.UNKNOWN_OUTCOME, reason)

    def _expire_pending(self, now: int) -> None:
        expired = False
        while self.pending:
            seq, (created, items) = next(iter(self.pending.items()))
            if now - created < PUBLISH_TIMEOUT_MS:
                break
            del self.pending[seq]
            expired = True
            self.log.warning(
                "batch %d of %d sets not acknowledged in time (requests %s)",
                seq,
                len(items),
                [item[5] for item in items],
            )
            self._fail(
                items,
                ErrorCode.UNKNOWN_OUTCOME,
                "the bus did not confirm the write in time; it may still be applied",
            )
        if expired and self.bus is not None:
            # Lazy pirate: drop whatever is queued for a connection that stopped answering.
            self.bus = self.replace_socket(self.bus, zmq.DEALER)
            self.bus.immediate = True
            self.bus.connect(self.config.bus_url)

    def _unavailable_reply(self, ident: bytes, request_id: int) -> bool:
        if self.phase == READY:
            return False
        self.reply(
            ident, request_id, Error(ErrorCode.UNAVAILABLE, self._phase_reason(), RETRY_AFTER_S)
        )
        return True

    def handle_get(self, ident: bytes, request_id: int, message: messages.Get) -> None:
        if self._unavailable_reply(ident, request_id):
            return
        record = self.table.record(message.key) if isinstance(message.key, str) else None
        if record is None:
            self.reply(ident, request_id, Error(ErrorCode.NOT_FOUND, "user_id: not found"))
        else:
            self.reply(ident, request_id, Ok(record))

    def handle_snapshot_open(
        self, ident: bytes, request_id: int, _message: messages.SnapshotOpen
    ) -> None:
        if self._unavailable_reply(ident, request_id):
            return
        meta = {
            "generated_at_ms": now_ms(),
            "position": self.position,
            "log_id": self.log_id,
            "replica_id": self.rid,
            "hlc": self.hlc.last,
            "rows": len(self.table),
        }
        snapshot_id = next(self._snapshot_ids)
        self._snapshots[snapshot_id] = _Snapshot(self.table.keys(), meta)
        self.reply(ident, request_id, Ok([snapshot_id, meta]))

    def handle_snapshot_next(
        self, ident: bytes, request_id: int, message: messages.SnapshotNext
    ) -> None:
        snapshot = self._snapshots.get(message.snapshot_id)
        if snapshot is None:
            self.reply(ident, request_id, Error(ErrorCode.NOT_FOUND, "snapshot expired"))
            return
        start = snapshot.offset
        keys = snapshot.keys[start : start + max(1, min(message.max_rows, SNAPSHOT_MAX_ROWS))]
        snapshot.offset += len(keys)
        snapshot.touched_ms = monotonic_ms()
        if not keys:
            del self._snapshots[message.snapshot_id]
        # NOTE: the snapshot's keys are the table's in slot order, so their rows are the
        # slots start..offset: one bytes object, not a list per row to encode.
        self.reply(ident, request_id, Ok([keys, self.table.packed_rows(start, snapshot.offset)]))

    def _expire_snapshots(self, now: int) -> None:
        for snapshot_id, snapshot in list(self._snapshots.items()):
            if now - snapshot.touched_ms > SNAPSHOT_IDLE_MS:
                del self._snapshots[snapshot_id]

    def handle_status(self, ident: bytes, request_id: int, _message: messages.Status) -> None:
        self.reply(
            ident,
            request_id,
            Ok(
                {
                    "replica_id": self.rid,
                    "phase": self.phase,
                    "rows": len(self.table),
                    "position": self.position,
                    "log_id": self.log_id,
                    "replicated": self.config.replicated,
                    "bus_up": self.bus_up,
                    "broker_live": self.broker_live,
                    "pending_batches": len(self.pending),
                    "restored_rows": self._restored_rows,
                    "writable": self._refusal() is None,
                    "write_refusal": self._refusing or "",
                    "sets_applied": self.sets_applied,
                    "remote_applied": self.remote_applied,
                    "replication_lag_ms": self.lag_ms,
                }
            ),
        )

    # --- restore -----------------------------------------------------------

    def _start_restore(self) -> None:
        self.log.info("restoring from %s/backup", self.config.next_replica_url)
        self._start_load(BackupDownload(self.config.next_replica_url))

    def _start_load(self, source: RowSource) -> None:
        source.start()
        self._load = TableLoad(source, self.table, self.log)

    def _load_step(self, now: int) -> None:
        assert self._load is not None
        outcome = self._load.step(now)
        if outcome is None:
            return
        load, self._load = self._load, None
        self._restored_rows += load.rows
        kind, value = outcome
        if kind == "done":
            self.hlc.observe(value["hlc"])
            self.log.info(
                "restore: %d rows loaded in %.1f s (%.0f rows/s); replaying the "
                "log from position %d",
                load.rows,
                load.elapsed_s(),
                load.rate(),
                value["position"],
            )
            self.log_id = value["log_id"]
            self._begin_catch_up(value["position"])
        else:
            self.log.warning("could not restore: %s; rebuilding from the bus log instead", value)
            self._rebuild_from_log()

    def _rebuild_from_log(self) -> None:
        """No peer: this replica's newest snapshot file and the log after it, else all the log.

        The snapshot is tried once per process: if it fails to load, or the log no
        longer reaches back to it, the log from position 0 (or a Gone) decides.
        """
        found = None if self._snapshot_tried else snapshot_file.newest(self.config.run_dir)
        if found is None:
            self._begin_catch_up(0)
            return
        self._snapshot_tried = True
        path, meta = found
        self.log.info(
            "loading this replica's snapshot %s (%d rows at position %d)",
            path.name,
            meta["rows"],
            meta["position"],
        )
        self.phase = RESTORING
        self._start_load(snapshot_file.SnapshotLoad(path))

    def handle_gone(self, _ident: bytes, _request_id: int, message: messages.Gone) -> None:
        """The log no longer holds our position: never replay from wherever it starts now."""
        if message.catchup_id != self.catchup_id:
            return
        self.log.error(
            "REFUSED: the log cannot replay from position %d: %s", self.position, message.reason
        )
        if self.config.next_replica_url:
            self.log.error("falling back to the peer's backup at %s", self.config.next_replica_url)
            self.phase = RESTORING
            self._start_restore()
        else:
            self.log.error(
                "no NEXT_REPLICA_URL to restore from: this replica stays unavailable "
                "until it is started with a peer"
            )

    def _begin_catch_up(self, position: int) -> None:
        self.phase = CATCHING_UP
        self.position = position
        self._request_catch_up()

    def _request_catch_up(self) -> None:
        """Ask the (current) broker to replay the log from our position, then go live."""
        self.broker_live = False
        self.catchup_id = secrets.randbits(62)
        self._send_broker(messages.CatchUp(self.catchup_id, self.position, self.log_id))

    # --- messages from the broker ------------------------------------------

    def handle_broker_status(
        self, ident: bytes, _request_id: int, message: messages.BrokerStatus
    ) -> None:
        self.broker_seen_ms = monotonic_ms()
        self.bus_up = bool(message.bus_up)
        if message.session != self.broker_session or ident != self.broker_ident:
            if self.broker_session:
                self.log.warning("broker restarted; catching up from position %d", self.position)
                if self.bus is None:
                    # NOTE: the old broker took its batches' acks with it: answer them now,
                    # not after PUBLISH_TIMEOUT_MS, so their slots carry new sets at once.
                    # (On the built-in bus the acks come to us, not through the broker.)
                    self._fail_pending("the broker restarted before the bus confirmed the write")
            self.broker_ident, self.broker_session = ident, message.session
            if self.phase != RESTORING:
                self._request_catch_up()
        elif self.phase != RESTORING and not self.broker_live and message.next_position == -1:
            self._request_catch_up()  # the broker lost our CatchUp (it was restarting)

    def _heard_broker(self, ident: bytes) -> None:
        """Any message of the current broker shows it is alive, not only its status beats."""
        if ident == self.broker_ident:
            self.broker_seen_ms = monotonic_ms()

    # --- the bus's answers to our publishes (built-in bus) ---------------------

    def bus_ok(self, _ident: bytes | None, request_id: int, message: Ok) -> None:
        self.bus_heard_ms = monotonic_ms()
        entry = self.pending.pop(request_id, None)
        if entry is None:
            return  # answered already: timed out (the log delivers it), or seen in the log
        result = message.result
        if isinstance(result, list) and result and type(result[0]) is int:
            self.acked_own[request_id] = result[0]
        self._complete(entry[1])

    def bus_error(self, _ident: bytes | None, request_id: int, message: Error) -> None:
        self.bus_heard_ms = monotonic_ms()
        self._fail_batch(
            request_id,
            f"refused by the bus ({message.reason})",
            ErrorCode.UNAVAILABLE,
            "the bus refused the write",
        )

    def _fail_batch(self, seq: int, why: str, code: str, reason: str) -> None:
        """Answer a batch still awaiting its publish with an error, said in one line."""
        entry = self.pending.pop(seq, None)
        if entry is not None:
            self.log.warning("batch %d %s; requests %s", seq, why, [i[5] for i in entry[1]])
            self._fail(entry[1], code, reason)

    # --- messages from the JetStream broker about our publishes ----------------

    def handle_acked(self, ident: bytes, _request_id: int, message: messages.Acked) -> None:
        self._heard_broker(ident)
        for seq in message.seqs:
            entry = self.pending.pop(seq, None)
            if entry is not None:
                self._complete(entry[1])

    def handle_failed(self, ident: bytes, _request_id: int, message: messages.Failed) -> None:
        self._heard_broker(ident)
        why = f"failed ({message.code}: {message.reason})"
        for seq in message.seqs:
            self._fail_batch(seq, why, message.code, message.reason)

    def handle_apply(self, ident: bytes, _request_id: int, message: messages.Apply) -> None:
        self._heard_broker(ident)
        if message.catchup_id != self.catchup_id:
            return
        merge, observe, acked = self.table.merge, self.hlc.observe, self.acked_own
        for position, seq, data in message.records:
            if acked and acked.get(seq) == position:
                del acked[seq]  # our own batch, merged when the bus acknowledged it
                continue
            try:
                rid, changes = msgpack.unpackb(data)
            except Exception:
                self.log.error("log record %d is not a grades batch; skipped", position)
                continue
            if rid == self.rid:
                entry = self.pending.pop(seq, None)
                if entry is not None:  # our own batch, seen in the log before its ack
                    self._complete(entry[1])
                    continue
            for key, stamp, values in changes:
                merge(key, stamp, rid, values)
                observe(stamp)
            if changes and self.broker_live:
                self.lag_ms = max(0, now_ms() - stamp_ms(changes[-1][1]))
            self.remote_applied += len(changes)
        self.position = message.next_position
        if len(acked) > ACKED_OWN_PRUNE:
            self.acked_own = {s: p for s, p in acked.items() if p >= self.position}

    def handle_live(self, _ident: bytes, _request_id: int, message: messages.Live) -> None:
        if message.catchup_id != self.catchup_id:
            return
        self.position = message.next_position
        self.log_id = message.log_id
        self.broker_live = True
        if self.phase == CATCHING_UP:
            self.phase = READY
            gc.freeze()  # the loaded map leaves the GC's generations for good
            gc.enable()
            self.log.info("ready: %d rows, log position %d", len(self.table), self.position)
        else:
            self.log.info("live with the bus again at log position %d", self.position)


def main() -> int:
    setup_logging("storage")
    config = Config.from_env(os.environ, [])
    return run_actor(StorageActor(config), f"grades: storage replica={config.replica_id}")


if __name__ == "__main__":
    sys.exit(main())
