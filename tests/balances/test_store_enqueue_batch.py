"""store.enqueue_batch against a real PostgreSQL: the group commit of concurrent POSTs.

Each request of a batch must get what enqueue_task would have answered it alone, in list
order: its own task, the first task of a replayed key, or its own error, while the
others commit.
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from actors.balances import store
from actors.balances.store import TaskRequest

_names = itertools.count(1)


def new_user(db, loop, balance: int = 0) -> store.User:
    return loop.run(store.create_user(db, f"batch-{next(_names)}", balance))


def test_a_batch_queues_each_users_tasks_in_list_order(db, loop):
    a, b = new_user(db, loop), new_user(db, loop)
    requests = [
        TaskRequest(a.id, "replenishment", 1),
        TaskRequest(b.id, "replenishment", 2),
        TaskRequest(a.id, "write-off", 3),
        TaskRequest(a.id, "replenishment", 4),
        TaskRequest(b.id, "write-off", 5),
    ]
    outcomes = loop.run(store.enqueue_batch(db, requests))
    assert all(created for _, created in outcomes)
    for request, (task, _) in zip(requests, outcomes, strict=True):
        assert (task.user_id, task.type, task.amount, task.status) == (
            request.user_id,
            request.type,
            request.amount,
            store.QUEUED,
        )
    for user in (a, b):
        listed = loop.run(store.list_tasks(db, user.id))
        mine = [task for task, _ in outcomes if task.user_id == user.id]
        assert [t.id for t in listed] == [t.id for t in mine]  # acceptance order = list order


def test_one_key_twice_in_a_batch_is_one_task_and_its_replay(db, loop):
    a, b = new_user(db, loop), new_user(db, loop)
    outcomes = loop.run(
        store.enqueue_batch(
            db,
            [
                TaskRequest(a.id, "replenishment", 5, "k"),
                TaskRequest(a.id, "replenishment", 5, "k"),
                TaskRequest(a.id, "write-off", 5, "k"),
                TaskRequest(b.id, "replenishment", 5, "k"),  # a key is its user's
                TaskRequest(a.id, "replenishment", 6),
            ],
        )
    )
    first, created = outcomes[0]
    assert created and outcomes[1] == (first, False)
    assert isinstance(outcomes[2], store.IdempotencyMismatch) and outcomes[2].task == first
    theirs, theirs_created = outcomes[3]
    assert theirs_created and theirs.user_id == b.id and theirs.id != first.id
    last, last_created = outcomes[4]
    assert last_created and last.id > first.id
    assert [t.id for t in loop.run(store.list_tasks(db, a.id))] == [first.id, last.id]


def test_an_unknown_user_or_a_used_key_is_answered_alone_and_the_rest_commit(db, loop):
    a = new_user(db, loop)
    used, _ = loop.run(store.enqueue_task(db, a.id, "write-off", 2, "used"))
    before = loop.run(store.queued_count(db))
    outcomes = loop.run(
        store.enqueue_batch(
            db,
            [
                TaskRequest(10**15, "replenishment", 1),
                TaskRequest(a.id, "write-off", 2, "used"),
                TaskRequest(a.id, "replenishment", 3),
                TaskRequest(a.id, "replenishment", 2, "used"),
                TaskRequest(10**15, "replenishment", 1, "new-key"),
            ],
        )
    )
    assert isinstance(outcomes[0], store.UnknownUser)
    assert outcomes[1] == (used, False)
    task, created = outcomes[2]
    assert created and task.amount == 3
    assert isinstance(outcomes[3], store.IdempotencyMismatch) and outcomes[3].task == used
    assert isinstance(outcomes[4], store.UnknownUser)
    assert loop.run(store.queued_count(db)) == before + 1


def test_concurrent_batches_on_the_same_users_neither_deadlock_nor_reorder(db, loop):
    """Two batches take their users' locks in one order, whatever their lists' order."""
    users = [new_user(db, loop) for _ in range(6)]

    async def run():
        forward = [TaskRequest(u.id, "replenishment", 1) for u in users * 5]
        backward = [TaskRequest(u.id, "replenishment", 2) for u in reversed(users * 5)]
        async with asyncio.timeout(30):
            return await asyncio.gather(
                *(store.enqueue_batch(db, batch) for batch in [forward, backward] * 4)
            )

    batches = loop.run(run())
    for user in users:
        listed = [t.id for t in loop.run(store.list_tasks(db, user.id))]
        assert len(listed) == 8 * 5
        for outcomes in batches:  # a batch's tasks of a user: in its list's order
            mine = [task.id for task, _ in outcomes if task.user_id == user.id]
            assert mine == sorted(mine)
            assert set(mine) <= set(listed)


@pytest.mark.parametrize("size", [1, 300])
def test_a_batch_of_one_or_of_hundreds_queues_each(db, loop, size):
    user = new_user(db, loop)
    outcomes = loop.run(store.enqueue_batch(db, [TaskRequest(user.id, "replenishment", 1)] * size))
    assert len({task.id for task, _ in outcomes}) == size
    assert len(loop.run(store.list_tasks(db, user.id, limit=1000))) == size
