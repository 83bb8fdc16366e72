"""A fresh two-replica cluster started at once (as `make run` does) takes writes at once.

The bus and both replicas start together, the replicas with their default HTTP
workers. Each replica's NEXT_REPLICA_URL names the other, which is itself
starting: a peer that is not running or not ready holds nothing the bus log does
not, so neither waits for the other (issue 14: both used to wait ~2.5 s on each
other's 503 before falling back to the log). bench/ reports the time exactly
(measurement 9, ``--only start``); this bounds it loosely (issue 18: <= 2 s quiet).
"""

from __future__ import annotations

from actors.grades.testing import seconds_until_sets_accepted
from actors.runtime.testing import wait_until

READY_BOUND_S = 15.0
"""A loose bound that a loaded 2-core machine keeps too (7.6 s seen at load average 20);
bench measurement 9 (`--only start`) reports the exact time, under 2 s when quiet."""


def test_two_replicas_started_at_once_take_writes_without_waiting_for_each_other(cluster):
    cluster.workers = None  # the defaults of `make run`, not the tests' one worker a port
    _bus, one, two, launched = cluster.launch_fresh()
    accepted = seconds_until_sets_accepted([one, two], launched, READY_BOUND_S)
    assert len(accepted) == 2, (
        f"not taking writes {READY_BOUND_S:.0f} s after start (took: {accepted})\n"
        f"{one.output(30)}\n{two.output(30)}"
    )
    print(f"both replicas took writes {max(accepted.values()):.2f} s after start: {accepted}")
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
