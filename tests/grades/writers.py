"""Load for the replicated grades tests: writers that record what the cluster
acknowledged, a sampler of the longest stall, and the checks after a fault (the
replicas converged, nothing acknowledged was lost).

Shared by test_system.py, test_jetstream.py, test_jetstream_partition.py,
test_retention.py and test_log_retention.py.
"""

from __future__ import annotations

import itertools
import os
import threading
import time

import requests

from actors.grades.messages import Set
from actors.grades.testing import Replica
from actors.runtime.client import Client
from actors.runtime.testing import wait_until

__all__ = [
    "Bulk",
    "CONVERGE_TIMEOUT_S",
    "FAULT_USERS",
    "FIELDS",
    "RESUME_TIMEOUT_S",
    "Stalls",
    "Writer",
    "assert_holds_acked_writes",
    "converged",
    "resume_and_check",
    "start_long_load",
    "wait_for_acks",
    "wait_for_refusals",
]

FIELDS = ("postpaid_limit", "spp", "shipping_fee", "return_fee")
CONVERGE_TIMEOUT_S = 60
FAULT_USERS = [f"js{i}" for i in range(200)]
"""The users both replicas write during a JetStream fault."""
RESUME_TIMEOUT_S = 40
SAMPLE_S = 0.1


class Writer(threading.Thread):
    """Writes increasing values of some fields for a set of users, until stopped."""

    def __init__(
        self, replica: Replica, users: list[str], fields: tuple[str, ...], pace_s: float = 0.0
    ):
        super().__init__(daemon=True)
        self.replica = replica
        self.users = users
        self.fields = fields
        self.pace_s = pace_s
        self.acked: dict[tuple[str, str], int] = {}
        self.statuses: dict[int, int] = {}
        self.stop_event = threading.Event()
        self._counter = itertools.count(1)

    def run(self) -> None:
        session = requests.Session()
        for user in itertools.cycle(self.users):
            if self.stop_event.is_set():
                return
            value = next(self._counter)
            body = {field: value for field in self.fields}
            try:
                status = self.replica.set(user, session=session, **body).status_code
            except requests.RequestException:
                status = 0
                session = requests.Session()
                time.sleep(0.05)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 200:
                for field in self.fields:
                    self.acked[(user, field)] = value
            if self.pace_s:
                time.sleep(self.pace_s)

    def stop(self) -> "Writer":
        self.stop_event.set()
        self.join(timeout=30)
        assert not self.is_alive()
        return self

    def acked_count(self) -> int:
        return self.statuses.get(200, 0)


def wait_for_acks(writers: list[Writer], count: int, what: str) -> None:
    """Let the load run until every writer has `count` more writes acknowledged.

    The load phases of the fault tests wait on this condition rather than for a fixed
    time, so a slow machine runs them longer instead of checking too little.
    """
    before = [w.acked_count() for w in writers]
    wait_until(
        lambda: all(w.acked_count() >= b + count for w, b in zip(writers, before)),
        RESUME_TIMEOUT_S,
        what,
    )


def wait_for_refusals(writers: list[Writer], what: str) -> None:
    """Hold a fault until some writer has been refused (503) or left unsure (504)."""
    wait_until(
        lambda: any(503 in w.statuses or 504 in w.statuses for w in writers),
        RESUME_TIMEOUT_S,
        what,
    )


def converged(*replicas: Replica) -> dict[str, list[int]]:
    """Wait until every replica's full map (values and versions) is the same."""

    def same() -> dict[str, list[int]] | None:
        maps = [replica.backup_rows() for replica in replicas]
        return maps[0] if all(m == maps[0] for m in maps[1:]) else None

    rows: dict[str, list[int]] = wait_until(
        same, CONVERGE_TIMEOUT_S, "the replicas to converge", interval_s=0.5
    )
    return rows


def assert_holds_acked_writes(rows: dict[str, list[int]], *writers: Writer) -> None:
    for writer in writers:
        assert writer.acked_count() > 0, f"writer got no 200 at all: {writer.statuses}"
        for (user, field), value in writer.acked.items():
            stored = rows[user][FIELDS.index(field)]
            assert stored >= value, f"{user}.{field}: acknowledged {value}, holds {stored}"


BULK_SETS = 500
"""Sets per pipelined burst straight to the storage actor (the HTTP writers alone are slow)."""
BULK_PAUSE_S = 0.05


class Bulk(threading.Thread):
    """Pipelined Sets to one replica's storage actor, burst after burst, until stopped."""

    def __init__(self, replica: Replica) -> None:
        super().__init__(daemon=True)
        self.endpoint = replica.storage_endpoint
        self.stop_event = threading.Event()

    def run(self) -> None:
        with Client(self.endpoint) as client:
            for burst in itertools.count():
                if self.stop_event.is_set():
                    return
                for i in range(BULK_SETS):
                    client.send(Set(f"bulk{i}", [burst, None, i, None], 0))
                for _ in range(BULK_SETS):
                    client.receive()
                time.sleep(BULK_PAUSE_S)

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=30)
        assert not self.is_alive()


def start_long_load(one: Replica, two: Replica) -> tuple[list[Writer], Bulk]:
    """The retention tests' load, started: every field on replica 1 and spp on replica 2
    for 3,000 users, plus bulk Sets into replica 1's storage so the log grows fast."""
    users = [f"r{i}" for i in range(3000)]
    writers = [Writer(one, users, FIELDS), Writer(two, users, ("spp",))]
    bulk = Bulk(one)
    for load in [*writers, bulk]:
        load.start()
    return writers, bulk


class Stalls(threading.Thread):
    """Samples the writers' 200 counts: the longest time no replica acknowledged anything."""

    def __init__(self, writers: list[Writer]) -> None:
        super().__init__(daemon=True)
        self.writers = writers
        self.longest_s = 0.0
        self.stop_event = threading.Event()

    def run(self) -> None:
        last, since = -1, time.monotonic()
        while not self.stop_event.wait(SAMPLE_S):
            total = sum(w.acked_count() for w in self.writers)
            now = time.monotonic()
            if total != last:
                last, since = total, now
            self.longest_s = max(self.longest_s, now - since)


def resume_and_check(
    one: Replica, two: Replica, writers: list[Writer | Stalls]
) -> dict[str, list[int]]:
    """Writes flow again on both replicas; then stop, converge, nothing acknowledged lost.

    Prints (pytest -s) each writer's statuses and the longest stall of acknowledgements.
    """
    stalls, last = None, writers[-1]
    if isinstance(last, Stalls):
        stalls = last
        writers.pop()
    load = [w for w in writers if isinstance(w, Writer)]
    before = [w.acked_count() for w in load]
    wait_until(
        lambda: all(w.acked_count() > b + 20 for w, b in zip(load, before)),
        RESUME_TIMEOUT_S,
        "both replicas to acknowledge writes again",
    )
    for writer in load:
        writer.stop()
    if stalls is not None:
        stalls.stop_event.set()
        stalls.join(timeout=5)
    rows = converged(one, two)
    assert_holds_acked_writes(rows, *load)
    print(
        f"\n{os.environ.get('PYTEST_CURRENT_TEST', '').split(' ')[0]}: statuses "
        f"{[dict(sorted(w.statuses.items())) for w in load]}, longest stall "
        f"{stalls.longest_s if stalls else 0:.1f} s, {len(rows)} users identical"
    )
    return rows
