"""The built-in bus's log stays bounded under steady writes, and a replica cold-starts
from its own snapshot plus the log tail; a position retention deleted is refused
loudly and a peer's backup is used instead.

Small segments (32 KiB), a small retention (128 KiB) and a snapshot every second
make a few seconds of writes enough to trim the log many times over.
"""

from __future__ import annotations

import json
import time

import pytest

from actors.bus.messages import BusStats
from actors.grades import snapshot_file
from actors.runtime.client import Client
from actors.runtime.testing import wait_until
from tests.grades.writers import (
    FIELDS,
    Bulk,
    Writer,
    assert_holds_acked_writes,
    converged,
    start_long_load,
)

SEGMENT_BYTES = 32 * 1024
RETAIN_BYTES = 128 * 1024
LAG_S = 3.0
"""A record becomes deletable once both replicas' snapshots (every 1 s, taking a moment)
cover it and the bus's retention check (every 1 s) runs: about this long after it came."""
WRITE_S = 12
SAMPLE_EVERY_S = 0.25
BUS_ENV = {"BUS_SEGMENT_BYTES": SEGMENT_BYTES, "BUS_RETAIN_BYTES": RETAIN_BYTES}
REPLICA_ENV = {"GRADES_SNAPSHOT_EVERY_S": 1}


def stream_stats(bus) -> dict:
    with Client(bus.url) as client:
        return client.call(BusStats(), timeout_s=5)["streams"]["grades"]


@pytest.mark.timeout(180)
def test_a_long_write_run_keeps_the_log_bounded_and_a_cold_start_restores_it(cluster):
    bus = cluster.bus(**BUS_ENV)
    one = cluster.replica(1, bus, **REPLICA_ENV)
    two = cluster.replica(2, bus, next_url=one.get_base, **REPLICA_ENV)
    writers, bulk = start_long_load(one, two)
    largest, deadline = 0, time.monotonic() + WRITE_S
    while time.monotonic() < deadline:
        largest = max(largest, stream_stats(bus)["bytes"])
        time.sleep(SAMPLE_EVERY_S)
    for writer in [*writers, bulk]:
        writer.stop()
    stats = stream_stats(bus)
    written = stats["bytes"] * stats["records"] / max(1, stats["records"] - stats["first"])
    bound = RETAIN_BYTES + 2 * SEGMENT_BYTES + written / WRITE_S * LAG_S
    assert stats["first"] > 0, stats
    assert written > 2 * bound, f"too few writes to show trimming: {stats}"
    assert largest <= bound, f"log reached {largest} bytes, bound {bound:.0f} ({stats})"
    rows = converged(one, two)
    assert_holds_acked_writes(rows, *writers)

    # Replica 2 goes; writes go on; it comes back with no peer: own snapshot + log tail.
    assert cluster.stop(two) is None
    for i in range(200):
        assert one.set(f"while-down{i}", spp=i).status_code == 200
    wait_until(lambda: stream_stats(bus)["retain_floor"] > 0, 10, "a retention floor")
    again = cluster.replica(2, bus, **REPLICA_ENV)
    assert "loading this replica's snapshot" in again.output()
    converged(one, again)

    # A replica with no snapshot would need position 0, which retention deleted.
    fresh = cluster.replica(3, bus, wait=False, GRADES_SNAPSHOT_EVERY_S=0)
    wait_until(lambda: "REFUSED" in fresh.output(), 20, "the refusal to be logged")
    assert "older than the retained log" in fresh.output()
    assert not fresh.ready()
    cluster.stop(fresh)
    joined = cluster.replica(3, bus, next_url=one.get_base, GRADES_SNAPSHOT_EVERY_S=0)
    converged(one, again, joined)


@pytest.mark.timeout(180)
def test_a_snapshot_older_than_the_log_is_refused_then_the_peer_backup_is_used(cluster):
    bus = cluster.bus(**BUS_ENV)
    one = cluster.replica(1, bus, **REPLICA_ENV)
    two = cluster.replica(2, bus, next_url=one.get_base, **REPLICA_ENV)
    assert one.set("early", spp=1).status_code == 200
    wait_until(lambda: "snapshot of" in two.output(), 20, "replica 2's first snapshot")
    assert cluster.stop(two) is None
    _, meta = snapshot_file.newest(cluster.data_dir / "replica2")
    # An operator decommissions replica 2 at the bus (its position no longer holds the log).
    assert bus.stop() == 0
    retain = cluster.data_dir / "bus" / "grades" / "retain.json"
    saved = json.loads(retain.read_text())
    del saved["positions"]["replica2"]
    retain.write_text(json.dumps(saved))
    bus.start()
    bus.wait_listening()
    writer, bulk = Writer(one, [f"big{i}" for i in range(2000)], FIELDS), Bulk(one)
    writer.start()
    bulk.start()
    wait_until(
        lambda: stream_stats(bus)["first"] > meta["position"],
        60,
        "retention to delete what replica 2's snapshot needs",
    )
    writer.stop()
    bulk.stop()
    assert one.stop() == 0  # the peer is down when replica 2 comes back...
    back = cluster.replica(2, bus, next_url=one.get_base, wait=False, **REPLICA_ENV)
    wait_until(lambda: "REFUSED" in back.output(), 30, "its own snapshot to be refused")
    assert "falling back to the peer's backup" in back.output()
    one.start()  # ...and up again: replica 2 restores from it
    one.wait_ready()
    back.wait_ready()
    rows = converged(one, back)
    assert_holds_acked_writes(rows, writer)
