"""balances.store users and task queueing against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from actors.balances import store

_names = itertools.count(1)


def new_name(prefix: str = "user") -> str:
    return f"{prefix}-{next(_names)}"


def test_create_get_list_users(db, loop):
    alice = loop.run(store.create_user(db, new_name("alice"), 500))
    assert alice.balance == 500 and alice.id > 0
    assert loop.run(store.get_user(db, alice.id)) == alice
    more = [loop.run(store.create_user(db, new_name(), i)) for i in range(5)]
    listed = loop.run(store.list_users(db, after=alice.id - 1, limit=100))
    assert [u.id for u in listed] == sorted(u.id for u in [alice, *more])
    page1 = loop.run(store.list_users(db, after=alice.id, limit=2))
    page2 = loop.run(store.list_users(db, after=page1[-1].id, limit=2))
    assert [u.id for u in page1 + page2] == [u.id for u in more[:4]]


def test_taken_username_and_unknown_user(db, loop):
    name = new_name("bob")
    loop.run(store.create_user(db, name, 0))
    with pytest.raises(store.UsernameTaken):
        loop.run(store.create_user(db, name, 10))
    with pytest.raises(store.UnknownUser):
        loop.run(store.get_user(db, 10**15))


def test_enqueue_returns_a_queued_task_in_acceptance_order(db, loop):
    user = loop.run(store.create_user(db, new_name(), 100))
    tasks = [
        loop.run(store.enqueue_task(db, user.id, t, a))
        for t, a in [("replenishment", 5), ("write-off", 7), ("write-off", 1)]
    ]
    assert all(created for _, created in tasks)
    first, _ = tasks[0]
    assert (first.user_id, first.type, first.amount, first.status) == (
        user.id,
        "replenishment",
        5,
        "queued",
    )
    assert first.reason is None and first.balance_after is None and first.applied_at is None
    listed = loop.run(store.list_tasks(db, user.id))
    assert [t.id for t in listed] == sorted(t.id for t, _ in tasks)
    assert loop.run(store.get_task(db, first.id)) == first
    assert [t.id for t in loop.run(store.list_tasks(db, user.id, after=first.id, limit=1))] == [
        tasks[1][0].id
    ]


def test_enqueue_for_unknown_user_queues_nothing(db, loop):
    before = loop.run(store.queued_count(db))
    with pytest.raises(store.UnknownUser):
        loop.run(store.enqueue_task(db, 10**15, "replenishment", 5))
    assert loop.run(store.queued_count(db)) == before
    with pytest.raises(store.UnknownUser):
        loop.run(store.list_tasks(db, 10**15))
    with pytest.raises(store.UnknownTask):
        loop.run(store.get_task(db, 10**15))


def test_idempotency_key_repeat_returns_first_task(db, loop):
    user = loop.run(store.create_user(db, new_name(), 0))
    other = loop.run(store.create_user(db, new_name(), 0))
    first, created = loop.run(store.enqueue_task(db, user.id, "replenishment", 9, "k-1"))
    again, created_again = loop.run(store.enqueue_task(db, user.id, "replenishment", 9, "k-1"))
    assert created and not created_again and again == first
    with pytest.raises(store.IdempotencyMismatch) as info:
        loop.run(store.enqueue_task(db, user.id, "write-off", 9, "k-1"))
    assert info.value.task.id == first.id
    # The key is scoped to its user.
    theirs, created_theirs = loop.run(store.enqueue_task(db, other.id, "replenishment", 9, "k-1"))
    assert created_theirs and theirs.id != first.id
    assert len(loop.run(store.list_tasks(db, user.id))) == 1


def test_concurrent_repeats_of_one_key_queue_one_task(db, loop):
    user = loop.run(store.create_user(db, new_name(), 0))

    async def burst():
        return await asyncio.gather(
            *(store.enqueue_task(db, user.id, "replenishment", 3, "same") for _ in range(8))
        )

    results = loop.run(burst())
    assert len({t.id for t, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(loop.run(store.list_tasks(db, user.id))) == 1


def test_concurrent_enqueues_commit_in_id_order(db, loop):
    """The per-user lock: a task is never visible while an older one is uncommitted, so
    every committed id set of a user is a prefix of its final id order."""
    user = loop.run(store.create_user(db, new_name(), 0))

    async def run():
        snapshots: list[list[int]] = []
        stop = asyncio.Event()

        async def watch():
            while not stop.is_set():
                snapshots.append([t.id for t in await store.list_tasks(db, user.id, limit=1000)])
                await asyncio.sleep(0)

        watcher = asyncio.create_task(watch())
        for _ in range(2):  # two waves, so a snapshot falls between them even under load
            seen = len(snapshots)
            await asyncio.gather(
                *(store.enqueue_task(db, user.id, "replenishment", 1) for _ in range(20))
            )
            async with asyncio.timeout(10):
                while len(snapshots) <= seen + 1:
                    await asyncio.sleep(0.001)
        stop.set()
        await watcher
        final = [t.id for t in await store.list_tasks(db, user.id, limit=1000)]
        assert len(final) == 40 and len(snapshots) > 1
        for ids in snapshots:
            assert ids == final[: len(ids)]

    loop.run(run())
