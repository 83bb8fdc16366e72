"""Wake-up latency across "hosts": a task accepted on instance A, its shard held by B.

    python -m bench.balances.wakeup [--tasks 200] [--poll-ms 60000] [--same-instance]

Two `balances` instances on one private PostgreSQL, each in its own mount namespace
with a private tmpfs over the directory holding both run dirs, so neither can reach the
other's ipc sockets (as on two hosts; needs root). Tasks are posted one at a time on A
for users whose shards B's workers hold (or A's, with --same-instance), and each
latency is applied_at - created_at, both the database's clock. Prints p50/p99/max.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from actors.balances.testing import (
    check_user,
    launch_private,
    shards_of,
    users_in_shards,
    wakeup_latencies,
)
from actors.runtime.testing import ProcGroup, wait_until
from bench.common.pg import Postgres, percentile

USERS = 8
"""Users the tasks rotate over (all in the owning instance's shards)."""


def measure(tasks: int, poll_ms: int, same_instance: bool) -> dict[str, float]:
    with Postgres("wakeup") as pg, tempfile.TemporaryDirectory(prefix="wakeup-") as tmp:
        dsn = pg.create_database("balances")
        group = ProcGroup(Path(tmp))
        try:
            a, b = (
                launch_private(group, dsn, name, workers=2, BALANCES_POLL_MS=poll_ms)
                for name in ("a", "b")
            )
            owner = a if same_instance else b
            shards = wait_until(
                lambda: shards_of(dsn, owner, 32), 30, "the four workers to split the shards"
            )
            users = users_in_shards(a, shards, USERS, "wake")
            latencies = sorted(wakeup_latencies(a, users, tasks, timeout_s=poll_ms / 1000 + 5))
            applied = sum(len(check_user(a, u, 0)) for u in users)
            assert applied == tasks, f"{applied} tasks applied, {tasks} posted"
        finally:
            problems = group.stop_all()
        assert not problems, problems
    return {
        "tasks": tasks,
        "poll_ms": poll_ms,
        "owner": "A (same instance)" if same_instance else "B (other host)",
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--poll-ms", type=int, default=60_000)
    parser.add_argument("--same-instance", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.tasks, args.poll_ms, args.same_instance)))


if __name__ == "__main__":
    main()
