"""The snapshotter: a replica's child that writes its own snapshot file now and then.

Every GRADES_SNAPSHOT_EVERY_S (and soon after the replica is first ready) it
pulls the storage actor's map through SnapshotOpen/SnapshotNext, as the getter
does for GET /backup, into ``<run_dir>/snapshot.csv.gz`` (actors.grades.snapshot_file).
Then it tells the log that this replica needs it only from the snapshot's
position on: BusRetain to the built-in bus (actors.bus.retention), or a put into
the stream's retain bucket on JetStream (actors.grades.jetstream.retention);
either may then delete what every live replica has snapshotted. While the
position does not move it repeats the report every interval without writing a
new file: the log counts a replica silent for BUS_RETAIN_SILENT_S out.

A separate process, so that gzip and disk writes never stall the storage loop
beyond the chunk reads a backup costs anyway, and a failed write costs nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from types import FrameType
from typing import Any

from actors.bus.messages import BusRetain
from actors.grades.config import Config
from actors.grades.messages import Status
from actors.grades.snapshot_file import write_snapshot
from actors.runtime.base import set_title, setup_logging
from actors.runtime.client import Client, RemoteError
from actors.runtime.security import Curve

__all__ = ["main"]

FIRST_AFTER_READY_S = 2.0
"""The first snapshot follows readiness closely: until then the bus trims nothing for us."""
NOT_READY_PAUSE_S = 1.0
CALL_TIMEOUT_S = 5.0
TICK_S = 0.1


class Snapshotter:
    """Writes the replica's map to its snapshot file on a timer, then tells the bus the
    log position it covers (the bus may trim below every replica's snapshot)."""

    def __init__(self, config: Config, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self.stopping = False
        self.consumer = f"replica{config.replica_id}"

    def _stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(TICK_S)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        cfg = self.config
        curve = Curve.load(cfg.curve_dir)
        storage = Client(cfg.storage_endpoint, timeout_s=CALL_TIMEOUT_S, curve=curve)
        bus = None if cfg.jetstream else Client(cfg.bus_url, timeout_s=CALL_TIMEOUT_S, curve=curve)
        self.log.info("snapshot every %d s into %s", cfg.snapshot_every_s, cfg.run_dir)
        try:
            waited_ready, last_position = False, None
            meta: dict[str, Any] | None = None
            while not self.stopping:
                try:
                    status = storage.call(Status())
                    ready = status["phase"] == "ready"
                except RemoteError:
                    ready = False
                if not ready:
                    waited_ready = False
                    self._sleep(NOT_READY_PAUSE_S)
                    continue
                if not waited_ready:
                    waited_ready = True
                    self._sleep(FIRST_AFTER_READY_S)
                    continue
                if (status["position"], status["log_id"]) != last_position:
                    meta = self._snapshot(storage)  # an idle replica is not rewritten...
                    if meta is not None and self._report(bus, meta):
                        last_position = (status["position"], status["log_id"])
                elif meta is not None:
                    self._report(bus, meta)  # ...but still says it is there
                self._sleep(cfg.snapshot_every_s)
        finally:
            storage.close()
            if bus is not None:
                bus.close()
        self.log.info("stopped")
        return 0

    def _snapshot(self, storage: Client) -> dict[str, Any] | None:
        """Write the snapshot; None if that failed (tried again later)."""
        started = time.monotonic()
        try:
            meta = write_snapshot(storage, self.config.run_dir)
        except (RemoteError, OSError) as exc:
            self.log.warning("snapshot not written: %s", exc)
            return None
        self.log.info(
            "snapshot of %d rows at log position %d written in %.2f s",
            meta["rows"],
            meta["position"],
            time.monotonic() - started,
        )
        return meta

    def _report(self, bus: Client | None, meta: dict[str, Any]) -> bool:
        """Tell the log our snapshot's position; False if it did not take it."""
        cfg = self.config
        if cfg.jetstream:
            from actors.grades.jetstream import retention

            try:
                retention.report(
                    cfg.bus_url,
                    cfg.stream,
                    cfg.nats_replicas,
                    self.consumer,
                    meta["position"],
                    meta["log_id"],
                )
            except retention.NATS_FAILURES as exc:
                self.log.warning("the stream did not take our snapshot position: %r", exc)
                return False
            return True
        assert bus is not None  # made when the log is the built-in bus
        try:
            first, floor = bus.call(
                BusRetain(cfg.stream, self.consumer, meta["position"], meta["log_id"])
            )
        except RemoteError as exc:
            self.log.warning("the bus did not take our snapshot position: %s", exc)
            return False
        self.log.debug("bus log starts at %d; every consumer's snapshot reaches %d", first, floor)
        return True


def main() -> int:
    config = Config.from_env(os.environ, [])
    log = setup_logging(f"snapshotter[{config.replica_id}]")
    set_title(f"grades: snapshotter replica={config.replica_id}")
    return Snapshotter(config, log).run()


if __name__ == "__main__":
    sys.exit(main())
