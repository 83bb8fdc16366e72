"""The worker's lock-users query at depth: EXPLAIN (ANALYZE, BUFFERS), before and after.

    python -m bench.balances.lock_users_plan [--users 10000] [--tasks 170000] [--queued 17000]
        [--scattered] [--plans]

Builds, in a private PostgreSQL, the balances schema with `--tasks` tasks over `--users`
users, the newest `--queued` of them still queued (the rest done), and runs the query
that used to pick the users (SELECT DISTINCT over the queued tasks, kept here as the
yardstick) and the store's current one (`apply._LOCK_USERS`), each with stale
statistics and after ANALYZE, for an owner holding every shard and one holding a
quarter of them. Each EXPLAIN runs in a transaction rolled back (the query locks rows).
Prints each plan's timing lines, or the whole plans with --plans.
"""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from actors.balances.store import SHARDS, claim_shards
from actors.balances.store.apply import _LOCK_USERS
from actors.balances.store.base import SCHEMA_DIR
from actors.runtime.pg import migrate
from bench.common.pg import Postgres

DISTINCT_LOCK_USERS = f"""
SELECT u.id, u.balance FROM balances.users u
WHERE u.id = ANY (ARRAY(
    SELECT DISTINCT t.user_id FROM balances.tasks t
    WHERE t.status = 'queued' AND t.user_id > $2
      AND (t.user_id % {SHARDS})::int IN (
          SELECT shard FROM balances.shard_leases WHERE owner = $1 AND lease_until > now())
    ORDER BY t.user_id LIMIT $3))
ORDER BY u.id
FOR NO KEY UPDATE OF u SKIP LOCKED
"""
"""The query before the loose index scan (the yardstick)."""

MAX_USERS = 200
"""apply_queued's default max_users."""


async def build(
    conn: asyncpg.Connection, users: int, tasks: int, queued: int, scattered: bool
) -> None:
    """Users; tasks on random users, `queued` of them queued: the newest, or (scattered)
    spread over the whole table, as when some shards lag behind for a long time."""
    queued_if = "g % ($2 / $3) = 0" if scattered else "g > $2 - $3"
    await conn.execute(
        "INSERT INTO balances.users (username, balance)"
        " SELECT 'u' || g, 1000000 FROM generate_series(1, $1) g",
        users,
    )
    await conn.execute(
        "INSERT INTO balances.tasks (user_id, type, amount, status, balance_after, applied_at)"
        " SELECT 1 + floor(random() * $1)::bigint, 'replenishment', 1,"
        f"  CASE WHEN {queued_if} THEN 'queued' ELSE 'done' END,"
        f"  CASE WHEN {queued_if} THEN NULL ELSE 1 END,"
        f"  CASE WHEN {queued_if} THEN NULL ELSE now() END"
        " FROM generate_series(1, $2) g",
        users,
        tasks,
        queued,
    )


async def plan(conn: asyncpg.Connection, sql: str, owner: str) -> list[str]:
    """The EXPLAIN (ANALYZE, BUFFERS) lines of one run of `sql`, rolled back."""
    tx = conn.transaction()
    await tx.start()
    try:
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", owner, 0, MAX_USERS)
    finally:
        await tx.rollback()
    return [r[0] for r in rows]


async def run(dsn: str, args: argparse.Namespace) -> None:
    await migrate(dsn, "balances", SCHEMA_DIR)
    conn = await asyncpg.connect(dsn)
    try:
        await build(conn, args.users, args.tasks, args.queued, args.scattered)
        # 'all' holds every shard; 'quarter' is given every fourth one in the lease table.
        await claim_shards(conn, "all", "inproc://none", 600)
        queries = {"distinct (before)": DISTINCT_LOCK_USERS, "loose scan (after)": _LOCK_USERS}
        for stats in ("stale statistics", "after ANALYZE"):
            if stats == "after ANALYZE":
                await conn.execute("ANALYZE")
            for held, owner in (("all 64 shards", "all"), ("16 of 64 shards", "quarter")):
                if owner == "quarter":
                    await conn.execute(
                        "UPDATE balances.shard_leases SET owner = 'quarter' WHERE shard % 4 = 1"
                    )
                for name, sql in queries.items():
                    lines = await plan(conn, sql, owner)
                    print(f"== {name}, {held}, {stats}")
                    shown = lines if args.plans else [line for line in lines if "Time:" in line]
                    print("\n".join(shown))
                await conn.execute(
                    "UPDATE balances.shard_leases SET owner = 'all' WHERE owner = 'quarter'"
                )
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--tasks", type=int, default=170_000)
    parser.add_argument("--queued", type=int, default=17_000)
    parser.add_argument("--scattered", action="store_true", help="queued rows all over")
    parser.add_argument("--plans", action="store_true", help="print whole plans")
    args = parser.parse_args()
    with Postgres("lock-users") as pg:
        asyncio.run(run(pg.create_database("balances"), args))


if __name__ == "__main__":
    main()
