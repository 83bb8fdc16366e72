"""A nudge that reaches a worker for a shard another instance holds is passed on.

An HTTP worker nudges the local worker its map of owners names, and that map is up to
a second old: right after a shard moved to another instance (a host came back and took
its share), the nudge lands on the worker that gave the shard up. That worker passes it
on as a NOTIFY, so the new holder applies the task though it polls once a minute. (Once
seen as the two-host rehearsal's "timed out after 15 s waiting for task N".)
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from actors.balances import store
from actors.balances.messages import Nudge
from actors.balances.testing import launch, launch_private, shards_of, users_in_shards
from actors.runtime.client import Client
from actors.runtime.testing import wait_until

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="a private run dir needs a mount namespace (unshare), so root"
)

POLL_MS = 60_000
WAKE_LIMIT_S = 5.0
"""Far below POLL_MS: a task applied within it was woken, not polled."""


def on_connection(dsn: str, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(run())


def test_a_nudge_for_a_shard_b_holds_is_passed_on_to_b(procs, pg_dsn):
    # A not private: the test reaches its worker's ipc socket, as A's HTTP worker does.
    a = launch(procs, pg_dsn, "host-a", workers=2, BALANCES_POLL_MS=POLL_MS)
    b = launch_private(procs, pg_dsn, "host-b", workers=2, BALANCES_POLL_MS=POLL_MS)
    b_shards = wait_until(lambda: shards_of(pg_dsn, b, 32), 30, "A and B to split the shards")
    user = users_in_shards(a, b_shards, 1, "moved")[0]
    # queued as the HTTP worker does, without its nudge: nothing else wakes B
    task, _ = on_connection(
        pg_dsn, lambda conn: store.enqueue_task(conn, int(user), store.REPLENISHMENT, 7)
    )
    a_worker = on_connection(
        pg_dsn,
        lambda conn: conn.fetchval(
            "SELECT endpoint FROM balances.lease_owners WHERE owner LIKE $1",
            f"%:{a.port}/worker-0",
        ),
    )
    with Client(a_worker) as client:  # what A's HTTP worker sends with a stale map
        client.call(Nudge([store.shard_of(int(user))]), timeout_s=5)

    def applied() -> bool:
        return a.get(f"/api/v1/task/{task.id}").json()["status"] != "queued"

    wait_until(applied, WAKE_LIMIT_S, f"B to apply task {task.id}")
    assert a.balance(user) == 7
