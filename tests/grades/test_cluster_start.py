"""A fresh two-replica cluster started at once (as `make run` does) takes writes at once.

Each replica's NEXT_REPLICA_URL names the other, which is itself starting: a
peer that is not running or not ready holds nothing the bus log does not, so
neither waits for the other (issue 14: both used to wait ~2.5 s on each
other's 503 before falling back to the log).
"""

from __future__ import annotations

import time

import requests

from actors.grades.testing import AUTH
from actors.runtime.testing import wait_until

READY_BOUND_S = 6.0
"""Generous for a loaded 2-core test machine; about 1.5 s when quiet (it was 4+ s)."""
POLL_S = 0.05


def _accepts_sets(replica) -> bool:
    try:
        response = requests.post(
            replica.set_url, json={"user_id": f"probe-{replica.replica_id}"}, auth=AUTH, timeout=2
        )
    except requests.RequestException:
        return False
    return response.status_code == 200


def test_two_replicas_started_at_once_take_writes_without_waiting_for_each_other(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus, start=False)
    two = cluster.replica(2, bus, next_url=one.get_base, start=False)
    one.env["NEXT_REPLICA_URL"] = two.get_base
    started = time.monotonic()
    one.start()
    two.start()
    pending = {one, two}
    while pending and time.monotonic() - started < READY_BOUND_S:
        pending = {r for r in pending if not _accepts_sets(r)}
        time.sleep(POLL_S)
    elapsed = time.monotonic() - started
    assert not pending, (
        f"not taking writes {elapsed:.1f} s after start: "
        f"{[r.name for r in pending]}\n{one.output(30)}\n{two.output(30)}"
    )
    print(f"both replicas took writes {elapsed:.2f} s after start")
    fell_back = 0
    for replica in (one, two):
        log = replica.output()
        # Each either fell back to the log at once or, if the other was ready first,
        # restored from its backup; neither retried a peer that was starting too.
        fell_back += "rebuilding from the bus log instead" in log
        assert "rebuilding from the bus log instead" in log or "replaying the log from" in log
        assert "peer answered 503" not in log
    assert fell_back >= 1  # the first to start found no ready peer
    wait_until(
        lambda: one.record("probe-2") and two.record("probe-1"),
        10,
        "each replica's first write to reach the other",
    )
    for replica in (one, two):  # each said so once, naming both its ports
        said = f"grades is ready on {replica.set_base} and {replica.get_base}"
        replica.wait_output(said, 10)
        assert replica.output().count(said) == 1
