"""balances.store.apply_queued: in-order application, cancellation, exactly once, fairness."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from actors.balances import store
from actors.balances.testing import replay

OWNER = "test-owner"
_names = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def lease_all(db, loop):
    """OWNER, the only live owner, holds every shard for the module (long lease)."""
    assert len(loop.run(store.claim_shards(db, OWNER, "inproc://none", 600))) == store.SHARDS


def new_user(db, loop, balance: int) -> store.User:
    return loop.run(store.create_user(db, f"apply-{next(_names)}", balance))


async def drain(db, owner: str = OWNER, **limits) -> list[store.ApplyResult]:
    results, after = [], 0
    while True:
        result = await store.apply_queued(db, owner, after_user=after, **limits)
        results.append(result)
        if not result.more:
            return results
        after = result.next_after


def check_replay(db, loop, user: store.User, plan: list[tuple[str, int]]) -> None:
    expected = replay(user.balance, plan)
    tasks = loop.run(store.list_tasks(db, user.id, limit=10_000))
    assert [(t.type, t.amount) for t in tasks] == plan
    assert [(t.status, t.balance_after) for t in tasks] == expected.outcomes
    for t in tasks:
        assert (t.reason is not None) == (t.status == "cancelled")
        assert t.applied_at is not None
    assert loop.run(store.get_user(db, user.id)).balance == expected.balance


def random_plan(rng: random.Random, n: int) -> list[tuple[str, int]]:
    """Write-offs a bit more often, so some land on a balance too low to cover them."""
    return [
        ("write-off" if rng.random() < 0.6 else "replenishment", rng.randint(1, 300))
        for _ in range(n)
    ]


def test_mixed_tasks_of_one_user_match_the_in_order_replay(db, loop):
    user = new_user(db, loop, 100)
    plan = random_plan(random.Random(1), 200)
    for type_, amount in plan:
        loop.run(store.enqueue_task(db, user.id, type_, amount))
    results = loop.run(drain(db, per_user=37))  # several batches for one user
    assert sum(r.tasks for r in results) == 200
    check_replay(db, loop, user, plan)
    assert any(s == "cancelled" for s, _ in replay(100, plan).outcomes)


def test_write_off_beyond_balance_is_cancelled_and_changes_nothing(db, loop):
    user = new_user(db, loop, 500)
    loop.run(store.enqueue_task(db, user.id, "write-off", 600))
    loop.run(store.enqueue_task(db, user.id, "write-off", 500))
    loop.run(drain(db))
    over, exact = loop.run(store.list_tasks(db, user.id))
    assert over.status == "cancelled" and over.balance_after is None
    assert "insufficient funds" in over.reason
    assert (exact.status, exact.balance_after) == ("done", 0)
    assert loop.run(store.get_user(db, user.id)).balance == 0


def test_replenishment_beyond_bigint_is_cancelled(db, loop):
    user = new_user(db, loop, store.MAX_MONEY - 1)
    loop.run(store.enqueue_task(db, user.id, "replenishment", 2))
    loop.run(store.enqueue_task(db, user.id, "replenishment", 1))
    loop.run(drain(db))
    first, second = loop.run(store.list_tasks(db, user.id))
    assert first.status == "cancelled" and second.balance_after == store.MAX_MONEY


def test_concurrent_appliers_apply_each_task_once_in_order(db, loop):
    """Four appliers racing over the same shards (a stale lease) never apply a task twice
    or out of order: the user row locks decide."""
    rng = random.Random(2)
    users = [new_user(db, loop, rng.randint(0, 500)) for _ in range(20)]
    plans = {u.id: random_plan(rng, 30) for u in users}

    async def enqueue_all():
        for i in range(30):
            await asyncio.gather(*(store.enqueue_task(db, u.id, *plans[u.id][i]) for u in users))

    async def race():
        results = await asyncio.gather(
            *(drain(db, max_users=3, per_user=4) for _ in range(4)), enqueue_all()
        )
        await drain(db)  # whatever the racers left behind after the last enqueue
        return results

    loop.run(race())
    for user in users:
        check_replay(db, loop, user, plans[user.id])


def test_a_long_queue_does_not_hold_up_another_user(db, loop):
    heavy = new_user(db, loop, 0)
    light = new_user(db, loop, 0)
    for _ in range(1000):
        loop.run(store.enqueue_task(db, heavy.id, "replenishment", 1))
    task, _ = loop.run(store.enqueue_task(db, light.id, "replenishment", 7))
    result = loop.run(store.apply_queued(db, OWNER, per_user=100))
    assert result.more and result.tasks == 101
    assert loop.run(store.get_task(db, task.id)).status == "done"
    loop.run(drain(db))
    assert loop.run(store.get_user(db, heavy.id)).balance == 1000


def test_without_a_lease_nothing_is_applied(db, loop):
    user = new_user(db, loop, 0)
    task, _ = loop.run(store.enqueue_task(db, user.id, "replenishment", 1))
    result = loop.run(store.apply_queued(db, "not-a-lease-holder"))
    assert result.tasks == 0 and not result.more
    assert loop.run(store.get_task(db, task.id)).status == "queued"
    loop.run(drain(db))
    assert loop.run(store.get_task(db, task.id)).status == "done"


def test_an_applied_task_is_never_applied_again(db, loop):
    user = new_user(db, loop, 10)
    loop.run(store.enqueue_task(db, user.id, "write-off", 10))
    loop.run(drain(db))
    assert loop.run(drain(db))[0].tasks == 0
    loop.run(store.enqueue_task(db, user.id, "replenishment", 1))
    loop.run(drain(db))
    assert [t.status for t in loop.run(store.list_tasks(db, user.id))] == ["done", "done"]
    assert loop.run(store.get_user(db, user.id)).balance == 1
