"""Which users one apply_queued picks: the loose index scan of the lock-users query must
pick exactly the users a plain SELECT DISTINCT would, in the same order, batch by batch."""

from __future__ import annotations

import random

import pytest

from actors.balances import store
from tests.fixtures_pg import fetch_rows

USERS = 300
MAX_USERS = 17
"""Small, so the walk takes many batches and crosses the cursor often."""

REFERENCE = f"""
SELECT DISTINCT t.user_id FROM balances.tasks t
JOIN balances.shard_leases l ON l.shard = t.user_id % {store.SHARDS}
WHERE t.status = 'queued' AND t.user_id > $2 AND l.owner = $1 AND l.lease_until > now()
ORDER BY t.user_id LIMIT $3
"""
"""The users apply_queued should take next, written the plain way (no locks)."""


def queued_users(db, loop) -> set[int]:
    rows = fetch_rows(
        loop, db, "SELECT DISTINCT user_id FROM balances.tasks WHERE status = 'queued'"
    )
    return {r["user_id"] for r in rows}


@pytest.fixture(scope="module")
def owners(db, loop) -> dict[str, list[int]]:
    """Owners a and b, half the shards each, over users with done and queued tasks: a
    first wave applied by a (holding every shard then), a second wave left queued."""
    rng = random.Random(7)
    users = [loop.run(store.create_user(db, f"lock-{i}", 10**6)).id for i in range(USERS)]
    assert len(loop.run(store.claim_shards(db, "a", "inproc://a", 600))) == store.SHARDS
    first = [
        (u, "replenishment", rng.randint(1, 9)) for u in users for _ in range(rng.randint(1, 6))
    ]
    loop.run(store.enqueue_many(db, first))
    while loop.run(store.apply_queued(db, "a", max_users=1000, per_user=1000)).more:
        pass
    assert not queued_users(db, loop)
    second = [(u, "write-off", 1) for u in rng.sample(users, USERS * 2 // 3)]
    loop.run(store.enqueue_many(db, second * 3))
    # b gets nothing while a holds all; a then gives up its surplus, and b takes it.
    loop.run(store.claim_shards(db, "b", "inproc://b", 600))
    held = {o: loop.run(store.claim_shards(db, o, f"inproc://{o}", 600)) for o in ("a", "b")}
    assert len(held["a"]) == len(held["b"]) == store.SHARDS // 2
    return held


def test_each_batch_picks_the_users_of_the_reference_query(db, loop, owners):
    b_users = {u for u in queued_users(db, loop) if store.shard_of(u) in owners["b"]}
    assert b_users, "the data must leave queued users in b's shards"
    after, batches = 0, 0
    while True:
        expected = [r["user_id"] for r in fetch_rows(loop, db, REFERENCE, "a", after, MAX_USERS)]
        before = queued_users(db, loop)
        result = loop.run(
            store.apply_queued(db, "a", after_user=after, max_users=MAX_USERS, per_user=1000)
        )
        picked = before - queued_users(db, loop)
        assert sorted(picked) == expected and result.users == len(expected)
        batches += 1
        if not result.more:
            break
        after = result.next_after
        assert after in (0, expected[-1])
    assert batches > 3
    remaining = queued_users(db, loop)
    assert remaining == b_users, "a applied exactly its own shards' users, b's stay queued"
