"""A third replica joins a running cluster with configuration only.

Replica 3 gets its own REPLICA_ID and ports, the bus addresses and
NEXT_REPLICA_URL of replica 2: it restores from replica 2's backup, replays the
log, and from then on is a replica like the others. `grades verify` (run as
an operator would, as a subprocess) must find all three identical, values and
versions, and a write on replica 3 must reach replicas 1 and 2.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

from actors.runtime.testing import ROOT, wait_until

CONVERGE_TIMEOUT_S = 30.0
VERIFY_TIMEOUT_S = 60.0
USERS = 200


def verify(*urls: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors.grades.cli", "verify", "--versions", *urls],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        capture_output=True,
        text=True,
        timeout=VERIFY_TIMEOUT_S,
    )


def verify_until_identical(*urls: str) -> subprocess.CompletedProcess:
    """Replication is asynchronous: re-run verify until it says identical (or time out)."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    while True:
        result = verify(*urls)
        if result.returncode != 1 or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_a_third_replica_joins_with_configuration_only(cluster):
    bus = cluster.bus()
    r1 = cluster.replica(1, bus, wait=False)
    r2 = cluster.replica(2, bus, next_url=f"http://127.0.0.1:{r1.getter_port}", wait=False)
    r1.wait_ready()
    r2.wait_ready()
    for i in range(USERS):
        writer = r1 if i % 2 else r2
        assert writer.set(f"user-{i}", spp=i, return_fee=-i).status_code == 200
    assert r2.set("user-0", postpaid_limit=42).status_code == 200  # a partial write

    r3 = cluster.replica(3, bus, next_url=r2.get_base)

    assert f"restoring from {r2.get_base}/backup" in r3.output()
    assert f"backup of {USERS} rows" in r3.output()  # restored from the peer, not the log
    result = verify_until_identical(r1.get_base, r2.get_base, r3.get_base)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"IDENTICAL: 3 replicas, {USERS} rows (values and versions)" in result.stdout

    assert r3.set("from-3", shipping_fee=3).status_code == 200
    for other in (r1, r2):
        wait_until(
            lambda replica=other: replica.record("from-3"),
            CONVERGE_TIMEOUT_S,
            f"{other.name} to get replica 3's write",
        )
        assert other.record("from-3")["shipping_fee"] == 3
    result = verify_until_identical(r3.get_base, r1.get_base, r2.get_base)
    assert result.returncode == 0, result.stdout + result.stderr
