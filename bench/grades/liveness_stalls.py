"""The longest a grades actor's loop leaves a Ping unanswered during legitimate long work.

The supervisor kills a child whose loop answers no Ping for HANG_AFTER_S
(actors.runtime.liveness). This checks the bound against the longest operations of a
storage actor and a broker: a bus and replica 1 with N rows (N sets in the bus log);
then, each actor pinged every 20 ms, replica 1 serves a full /backup and replica 2
restores from it; then replica 3, with no peer and no snapshot, rebuilds itself by
replaying the whole log through its broker.

    python -m bench.grades.liveness_stalls --rows 1000000
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from actors.grades.config import Config
from actors.grades.testing import Replica
from actors.runtime.client import Client, RemoteError
from actors.runtime.liveness import HANG_AFTER_S
from actors.runtime.protocol import Ping
from bench.grades import zmqload
from bench.grades.backup_restore import RESTORE_TIMEOUT_S, _read_backup
from bench.grades.stack import BenchError, Stack, wait_until

PING_EVERY_S = 0.02


class Pinger(threading.Thread):
    """Pings one endpoint until stopped; keeps the longest wait for an answer."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(daemon=True)
        self.endpoint = endpoint
        self.longest_s = 0.0
        self.answers = 0
        self._halt = threading.Event()

    def run(self) -> None:
        with Client(self.endpoint, timeout_s=60.0) as client:
            while not self._halt.is_set():
                asked = time.monotonic()
                try:
                    client.call(Ping())
                except RemoteError:  # not bound yet: that is starting, not a stall
                    continue
                self.answers += 1
                self.longest_s = max(self.longest_s, time.monotonic() - asked)
                self._halt.wait(PING_EVERY_S)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=70)


def _broker_endpoint(replica: Replica) -> str:
    """The broker's liveness ROUTER, as its Config names it."""
    return Config.from_env(replica.env, []).broker_liveness_endpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args(argv).rows
    with Stack("liveness") as stack:
        bus = stack.bus()
        one = stack.replica(1, bus)
        fill = zmqload.pipelined_sets(one.storage_endpoint, (str(i) for i in range(rows)))
        if fill["errors"]:
            raise BenchError(f"prefill: {fill['first_error']}")
        wait_until(lambda: one.readyz()[1].get("rows") == rows, 60, f"{rows} rows")
        serving = Pinger(one.storage_endpoint)
        serving.start()
        backup = _read_backup(one.get_base)
        started = time.monotonic()
        two = stack.replica(2, bus, next_url=one.get_base, start=False)
        restoring = Pinger(two.storage_endpoint)
        restoring.start()
        two.start()
        two.wait_ready(timeout_s=RESTORE_TIMEOUT_S * max(1.0, rows / 1_000_000))
        restore_s = time.monotonic() - started
        for pinger in (serving, restoring):
            pinger.stop()
        started = time.monotonic()
        three = stack.replica(3, bus, start=False)
        replaying = [Pinger(three.storage_endpoint), Pinger(_broker_endpoint(three))]
        for pinger in replaying:
            pinger.start()
        three.start()
        three.wait_ready(timeout_s=RESTORE_TIMEOUT_S * max(1.0, rows / 1_000_000))
        rebuild_s = time.monotonic() - started
        for pinger in replaying:
            pinger.stop()
        misfired = [r.name for r in (one, two, three) if "answered no ping" in r.output()]
    print(f"rows {rows}: backup read in {backup['seconds']:.1f} s, restore {restore_s:.1f} s")
    print(
        f"longest Ping wait, storage serving backups/restore: {serving.longest_s:.3f} s "
        f"({serving.answers} answers)"
    )
    print(
        f"longest Ping wait, storage restoring: {restoring.longest_s:.3f} s "
        f"({restoring.answers} answers); HANG_AFTER_S = {HANG_AFTER_S} s"
    )
    print(
        f"rebuild from the log: {rebuild_s:.1f} s; longest Ping wait, storage replaying: "
        f"{replaying[0].longest_s:.3f} s, broker replaying: {replaying[1].longest_s:.3f} s"
    )
    print(f"supervisors that killed a child for silence: {misfired or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
