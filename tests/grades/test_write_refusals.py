"""Why a ready replica refuses writes: judged by the data path, logged once per change.

Issue 14: a ready replica answered 503 for seconds while nothing had been killed, on a
loaded machine. A bus stalled in a long fsync sends no heartbeat; while what the storage
actor sent it can still be answered, it is not gone. Each change of the reason a replica
refuses writes is logged once and shown in /readyz. A bus that cannot write its log
refuses the storage actor's publish, and the set is a 503 that changed nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import requests

from actors.grades.testing import AUTH
from actors.runtime.testing import wait_until
from tests.bus.tiny_disk import bus_on_a_tiny_disk

STALL_S = 1.9
"""Longer than the old bus-dead threshold (1.5 s), shorter than a publish's timeout."""
WRITERS = 4


def _write_through(replica, stop: threading.Event, statuses: list, name: str) -> None:
    session = requests.Session()
    i = 0
    while not stop.is_set():
        response = session.post(
            replica.set_url, json={"user_id": f"{name}-{i}", "spp": i}, auth=AUTH, timeout=10
        )
        statuses.append((response.status_code, response.text[:200]))
        i += 1


def test_a_bus_stalled_with_writes_in_flight_costs_no_write(cluster):
    bus = cluster.bus()
    replica = cluster.replica(1, bus)
    stop, statuses = threading.Event(), []
    writers = [
        threading.Thread(target=_write_through, args=(replica, stop, statuses, f"w{n}"))
        for n in range(WRITERS)
    ]
    for writer in writers:
        writer.start()
    try:
        wait_until(lambda: len(statuses) > 50, 10, "writes to flow")
        os.kill(bus.process.pid, signal.SIGSTOP)
        time.sleep(STALL_S)
        os.kill(bus.process.pid, signal.SIGCONT)
        written = len(statuses)
        wait_until(lambda: len(statuses) > written + 50, 10, "writes to flow again")
    finally:
        os.kill(bus.process.pid, signal.SIGCONT)
        stop.set()
        for writer in writers:
            writer.join(timeout=15)
    refused = [s for s in statuses if s[0] != 200]
    assert not refused, f"{len(refused)} of {len(statuses)} writes refused: {refused[:5]}"
    assert "refusing writes" not in replica.output()


def _readyz(replica) -> tuple[int, dict]:
    response = requests.get(f"{replica.get_base}/readyz", timeout=5)
    return response.status_code, response.json()


def test_each_change_of_the_refusal_reason_is_logged_once_and_shown_in_readyz(cluster):
    bus = cluster.bus()
    replica = cluster.replica(1, bus)
    assert _readyz(replica) == (200, _readyz(replica)[1])
    assert _readyz(replica)[1]["write_refusal"] == ""
    os.kill(bus.process.pid, signal.SIGSTOP)
    try:
        status, body = wait_until(
            lambda: (s := _readyz(replica))[0] == 503 and s,
            10,
            "the replica to notice the silent bus",
        )
        assert body["write_refusal"] == "bus is unreachable"
        response = replica.set("refused", spp=1)
        assert response.status_code == 503
        assert response.json()["error"] == "bus is unreachable"
        assert "Retry-After" in response.headers
        time.sleep(1.0)  # more requests and ticks: still one log line
        replica.set("refused-again", spp=1)
    finally:
        os.kill(bus.process.pid, signal.SIGCONT)
    wait_until(lambda: _readyz(replica)[0] == 200, 10, "the replica to accept writes again")
    assert replica.set("accepted", spp=2).status_code == 200
    log = replica.output()
    assert log.count("refusing writes: bus is unreachable") == 1, log[-3000:]
    assert log.count("accepting writes again") == 1, log[-3000:]
    assert replica.record("refused") is None


def test_a_bus_that_cannot_write_its_log_refuses_sets_and_changes_nothing(cluster, tmp_path):
    with bus_on_a_tiny_disk(cluster, tmp_path) as (bus, filler):
        replica = cluster.replica(1, bus)
        session, acked = requests.Session(), []
        for i in range(5000):
            user_id = f"{i:06d}".ljust(128, "f")
            response = session.post(
                replica.set_url, json={"user_id": user_id, "spp": i}, auth=AUTH, timeout=10
            )
            if response.status_code != 200:
                break
            acked.append(user_id)
        else:
            pytest.fail("the bus log's disk never filled up")
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "the bus refused the write"
        assert "cannot write the log" in bus.output()
        filler.unlink()
        wait_until(lambda: replica.accepts_set("after"), 20, "sets to be taken again")
        rows = replica.backup_rows()
        assert user_id not in rows
        assert set(rows) == {*acked, "after"}
