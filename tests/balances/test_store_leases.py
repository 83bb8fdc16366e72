"""balances.store shard leases: fair split, release, expiry and takeover, apply follows them."""

from __future__ import annotations

import itertools

import pytest

from actors.balances import store
from actors.balances.testing import SCHEMA_DIR
from actors.runtime.pg import migrate
from actors.runtime.pg.pool import LazyPool
from actors.runtime.testing import wait_until

_numbers = itertools.count(1)
LONG_S = 600.0


@pytest.fixture
def fresh(pg_server, loop):
    """A LazyPool on a new database per test: leases are global state."""
    dsn = pg_server.create_database(f"t_balances_leases_{next(_numbers)}")
    loop.run(migrate(dsn, "balances", SCHEMA_DIR))
    pool = LazyPool(dsn, max_size=4)
    yield pool
    loop.run(pool.close())


def claim(loop, db, owner: str, lease_s: float = LONG_S) -> list[int]:
    return loop.run(store.claim_shards(db, owner, f"ipc://{owner}", lease_s))


def test_a_single_owner_holds_every_shard(fresh, loop):
    assert claim(loop, fresh, "a") == list(range(store.SHARDS))
    assert claim(loop, fresh, "a") == list(range(store.SHARDS))  # renewal keeps them


def test_two_owners_split_the_shards_evenly_and_disjointly(fresh, loop):
    claim(loop, fresh, "a")
    assert claim(loop, fresh, "b") == []  # nothing free yet; b is now a live owner
    a = claim(loop, fresh, "a")  # a gives back what is above its share
    b = claim(loop, fresh, "b")
    assert len(a) == len(b) == store.SHARDS // 2
    assert sorted(a + b) == list(range(store.SHARDS))
    endpoints = loop.run(store.shard_endpoints(fresh))
    assert {s: e for s, e in endpoints.items() if e == "ipc://b"} == {s: "ipc://b" for s in b}


def test_three_owners_split_64_as_22_21_21(fresh, loop):
    for _ in range(3):
        held = {o: claim(loop, fresh, o) for o in "abc"}
    assert sorted(len(s) for s in held.values()) == [21, 21, 22]
    assert sorted(sum(held.values(), [])) == list(range(store.SHARDS))


def test_a_released_owner_hands_everything_over(fresh, loop):
    claim(loop, fresh, "a")
    claim(loop, fresh, "b")
    claim(loop, fresh, "a")
    loop.run(store.release_shards(fresh, "a"))
    assert claim(loop, fresh, "b") == list(range(store.SHARDS))


def test_an_expired_owner_is_taken_over(fresh, loop):
    assert len(claim(loop, fresh, "a", lease_s=1.0)) == store.SHARDS
    assert claim(loop, fresh, "b") == []  # a's leases are still valid
    wait_until(
        lambda: claim(loop, fresh, "b") == list(range(store.SHARDS)),
        10,
        "a's leases to expire and b to take every shard",
        interval_s=0.05,
    )
    # a comes back: it is a live owner again and gets its share as b gives shards up.
    assert claim(loop, fresh, "a") == []
    claim(loop, fresh, "b")
    assert len(claim(loop, fresh, "a")) == store.SHARDS // 2


def test_apply_touches_only_the_shards_leased_to_the_owner(fresh, loop):
    claim(loop, fresh, "a")
    claim(loop, fresh, "b")
    a = set(claim(loop, fresh, "a"))
    claim(loop, fresh, "b")
    users = [loop.run(store.create_user(fresh, f"u{i}", 0)) for i in range(8)]
    tasks = {u.id: loop.run(store.enqueue_task(fresh, u.id, "replenishment", 1))[0] for u in users}
    loop.run(store.apply_queued(fresh, "a"))
    for user in users:
        status = loop.run(store.get_task(fresh, tasks[user.id].id)).status
        assert status == ("done" if store.shard_of(user.id) in a else "queued")
    loop.run(store.apply_queued(fresh, "b"))
    assert loop.run(store.queued_count(fresh)) == 0
