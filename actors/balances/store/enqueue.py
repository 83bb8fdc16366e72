"""Queueing amount tasks: one (`enqueue_task`), a group commit of concurrent requests
(`enqueue_batch`), a backlog (`enqueue_many`).

Acceptance order is the task id. Every enqueue takes the per-user advisory lock of each
of its users (in lock-key order, so two batches never deadlock) before any id is drawn,
and holds it to commit: a user's tasks commit in id order.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import asyncpg

from actors.balances.store.base import (
    ENQUEUE_LOCK_CLASS,
    QUERY_TIMEOUT_S,
    SHARD_CHANNEL_PREFIX,
    SHARDS,
    IdempotencyMismatch,
    Task,
    UnknownUser,
    connection,
    fetch,
    fetchrow,
)
from actors.balances.store.tasks import TASK_COLUMNS, task_from_row

LOCK_KEYS = 2147483647
"""A user's advisory lock key is its id modulo this (int4): users sharing a key only
serialise their enqueues."""

_ENQUEUE_BATCH = f"""
WITH v AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[])
        WITH ORDINALITY AS v(user_id, type, amount, idempotency_key, n)
), locked AS (
    SELECT count(pg_advisory_xact_lock($5, k)) AS users FROM (
        SELECT DISTINCT (user_id % {LOCK_KEYS})::int AS k FROM v ORDER BY k) AS keys
)
INSERT INTO balances.tasks (user_id, type, amount, idempotency_key)
SELECT v.user_id, v.type, v.amount, v.idempotency_key FROM v CROSS JOIN locked
WHERE EXISTS (SELECT 1 FROM balances.users u WHERE u.id = v.user_id)
ORDER BY v.n
ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING {TASK_COLUMNS}, idempotency_key
"""
"""The rows of a batch, in one statement and so one transaction: the locks first (the
sort of the insert's rows waits for the one-row `locked`), then the ids in list order.
Rows of unknown users, and keys used before, are left out rather than failing the rest.
NOTE: users are never deleted, so the EXISTS check cannot pass for a user the foreign
key then refuses."""


class TaskRequest(NamedTuple):
    """One POST's task, as enqueue_batch takes it."""

    user_id: int
    type: str
    amount: int
    idempotency_key: str | None = None


Accepted = tuple[Task, bool]
"""(task, created): created is False for a replayed Idempotency-Key (the first task)."""


async def enqueue_task(
    db: Any, user_id: int, type_: str, amount: int, idempotency_key: str | None = None
) -> Accepted:
    """Queue a task for a user; committed when this returns.

    Returns:
        (task, created): created is False when idempotency_key was used before for this
        user with the same type and amount; task is then the first task, as it is now.

    Raises:
        UnknownUser: no such user (nothing queued).
        IdempotencyMismatch: the key was used for this user with another type or amount.
    """
    try:
        row = await fetchrow(
            db,
            f"""
            WITH lock AS (SELECT pg_advisory_xact_lock($5, ($1::bigint % {LOCK_KEYS})::int))
            INSERT INTO balances.tasks (user_id, type, amount, idempotency_key)
            SELECT $1::bigint, $2, $3::bigint, $4 FROM lock
            ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL
            DO NOTHING
            RETURNING {TASK_COLUMNS}""",
            user_id,
            type_,
            amount,
            idempotency_key,
            ENQUEUE_LOCK_CLASS,
        )
    except asyncpg.ForeignKeyViolationError:
        raise UnknownUser(user_id) from None
    if row is not None:
        return task_from_row(row), True
    row = await fetchrow(
        db,
        f"SELECT {TASK_COLUMNS} FROM balances.tasks WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        idempotency_key,
    )
    assert row is not None  # the task that conflicted with the insert
    first = task_from_row(row)
    if (first.type, first.amount) != (type_, amount):
        raise IdempotencyMismatch(first)
    return first, False


async def enqueue_batch(db: Any, requests: list[TaskRequest]) -> list[Accepted | Exception]:
    """Queue the tasks of many requests in ONE statement (one commit), in list order.

    What that statement cannot settle goes through enqueue_task, one at a time, in list
    order, after it committed: an unknown user, a key used before (a replay or a
    mismatch), and a key that appears again later in the list, which therefore finds
    the first's task.

    Returns:
        Per request, in list order: (task, created), or its own error (a StoreError,
        or a database error of its one-at-a-time enqueue).

    Raises:
        Any database error of the batch statement: nothing of it committed.
    """
    outcomes: list[Accepted | Exception | None] = [None] * len(requests)
    keys_seen: set[tuple[int, str]] = set()
    batch: list[int] = []  # indexes into requests
    later: list[int] = []
    for i, request in enumerate(requests):
        key = request.idempotency_key
        if key is None:
            batch.append(i)
        elif (request.user_id, key) in keys_seen:
            later.append(i)
        else:
            keys_seen.add((request.user_id, key))
            batch.append(i)
    rows = await fetch(
        db,
        _ENQUEUE_BATCH,
        [requests[i].user_id for i in batch],
        [requests[i].type for i in batch],
        [requests[i].amount for i in batch],
        [requests[i].idempotency_key for i in batch],
        ENQUEUE_LOCK_CLASS,
    )
    _match(requests, batch, rows, outcomes)
    later.extend(i for i in batch if outcomes[i] is None)
    for i in sorted(later):
        # NOTE: every error is this request's alone from here: the batch has committed,
        # and its requests must hear 202, not the 503 of a later one-at-a-time enqueue.
        try:
            outcomes[i] = await enqueue_task(db, *requests[i])
        except Exception as exc:
            outcomes[i] = exc
    settled = [o for o in outcomes if o is not None]
    assert len(settled) == len(requests)  # each request is in the batch or settled later
    return settled


def _match(
    requests: list[TaskRequest],
    batch: list[int],
    rows: list[asyncpg.Record],
    outcomes: list[Accepted | Exception | None],
) -> None:
    """Give each inserted row to its request: a keyed one by (user, key), a keyless one
    by the user's ids in list order (a keyless row is only left out when its user is
    unknown, and then all of that user's are)."""
    by_key: dict[tuple[int, str], Task] = {}
    keyless: dict[int, deque[Task]] = {}
    for row in sorted(rows, key=lambda r: r["id"]):
        task = task_from_row(row)
        key = row["idempotency_key"]
        if key is None:
            keyless.setdefault(task.user_id, deque()).append(task)
        else:
            by_key[(task.user_id, key)] = task
    for i in batch:
        user_id, _, _, key = requests[i]
        found: Task | None = None
        if key is not None:
            found = by_key.get((user_id, key))
        elif queue := keyless.get(user_id):
            found = queue.popleft()
        if found is not None:
            outcomes[i] = (found, True)


async def enqueue_many(db: Any, tasks: list[tuple[int, str, int]]) -> list[int]:
    """Queue many (user_id, type, amount) tasks in one transaction, in list order (for
    loading a backlog at once: benches, tests). Nothing is queued if a user is unknown.

    Returns:
        The task ids, in list order.

    Raises:
        UnknownUser: some user does not exist (its id is not said).
    """
    users = sorted({u for u, _, _ in tasks})
    async with connection(db) as conn, conn.transaction():
        await conn.execute(
            f"SELECT pg_advisory_xact_lock($2, k) FROM (SELECT DISTINCT"
            f" (u % {LOCK_KEYS})::int AS k FROM unnest($1::bigint[]) AS u ORDER BY k) AS keys",
            users,
            ENQUEUE_LOCK_CLASS,
            timeout=QUERY_TIMEOUT_S,
        )
        try:
            rows = await conn.fetch(
                "INSERT INTO balances.tasks (user_id, type, amount)"
                " SELECT u, t, a FROM unnest($1::bigint[], $2::text[], $3::bigint[])"
                "   WITH ORDINALITY AS v(u, t, a, n) ORDER BY n"
                " RETURNING id",
                [u for u, _, _ in tasks],
                [t for _, t, _ in tasks],
                [a for _, _, a in tasks],
                timeout=QUERY_TIMEOUT_S * 6,
            )
        except asyncpg.ForeignKeyViolationError:
            raise UnknownUser(0) from None
        # NOTE: one NOTIFY per backlog, in its transaction (see actors.runtime.pg.notify
        # for why a single task's enqueue does not): the shards' workers wake at commit.
        await conn.execute(
            "SELECT pg_notify($1 || s, '') FROM (SELECT DISTINCT u % $2 AS s"
            " FROM unnest($3::bigint[]) AS u) AS shards",
            SHARD_CHANNEL_PREFIX,
            SHARDS,
            users,
            timeout=QUERY_TIMEOUT_S,
        )
    return sorted(r["id"] for r in rows)
