"""Two `balances` instances as two "hosts": a task accepted on A whose shard B holds is
applied within a second, woken by PostgreSQL's LISTEN/NOTIFY.

Each instance runs in a mount namespace of its own with a private tmpfs over the
directory of both run dirs, so neither can reach the other's ipc sockets, and both poll
only once a minute: a task applied in time got there by its notification.
"""

from __future__ import annotations

import os

import pytest

from actors.balances.testing import check_user, launch_private, shards_of, users_in_shards
from actors.balances.testing import wakeup_latencies as measure
from actors.runtime.testing import wait_until
from bench.common.pg import percentile

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="private run dirs need a mount namespace (unshare), so root"
)

TASKS = 200
USERS = 8
POLL_MS = 60_000
WAKE_LIMIT_S = 1.0


def test_a_task_accepted_on_a_is_applied_by_b_within_a_second_once(procs, pg_dsn):
    a, b = (
        launch_private(procs, pg_dsn, name, workers=2, BALANCES_POLL_MS=POLL_MS)
        for name in ("host-a", "host-b")
    )
    b_shards = wait_until(lambda: shards_of(pg_dsn, b, 32), 30, "A and B to split the shards")
    users = users_in_shards(a, b_shards, USERS, "cross")
    latencies = sorted(measure(a, users, TASKS, timeout_s=WAKE_LIMIT_S * 5))
    print(
        f"\naccepted on A -> applied by B: {TASKS} tasks, p50"
        f" {percentile(latencies, 50) * 1000:.1f} ms, p99"
        f" {percentile(latencies, 99) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )
    assert latencies[-1] < WAKE_LIMIT_S
    applied = [check_user(a, user, 0) for user in users]  # each once, in order
    assert sum(len(tasks) for tasks in applied) == TASKS
    assert sum(a.balance(user) for user in users) == TASKS
