"""Amount tasks: enqueue (ordered per user, Idempotency-Key), read, queue depth."""

from __future__ import annotations

from typing import Any

import asyncpg

from actors.balances.store.base import (
    ENQUEUE_LOCK_CLASS,
    QUERY_TIMEOUT_S,
    SHARD_CHANNEL_PREFIX,
    SHARDS,
    IdempotencyMismatch,
    Task,
    UnknownTask,
    UnknownUser,
    connection,
    fetch,
    fetchrow,
    fetchval,
)
from actors.balances.store.users import get_user

_TASK_COLUMNS = "id, user_id, type, amount, status, reason, balance_after, created_at, applied_at"


def _task(row: asyncpg.Record) -> Task:
    return Task(*(row[i] for i in range(9)))


async def enqueue_task(
    db: Any, user_id: int, type_: str, amount: int, idempotency_key: str | None = None
) -> tuple[Task, bool]:
    """Queue a task for a user; committed when this returns.

    Returns:
        (task, created): created is False when idempotency_key was used before for this
        user with the same type and amount; task is then the first task, as it is now.

    Raises:
        UnknownUser: no such user (nothing queued).
        IdempotencyMismatch: the key was used for this user with another type or amount.
    """
    # NOTE: the advisory lock is taken before the row (and its id) is formed, and held
    # to commit: a user's tasks commit in id order. Users sharing a lock key (ids equal
    # modulo 2**31-1) only serialise their enqueues, nothing else.
    try:
        row = await fetchrow(
            db,
            f"""
            WITH lock AS (SELECT pg_advisory_xact_lock($5, ($1::bigint % 2147483647)::int))
            INSERT INTO balances.tasks (user_id, type, amount, idempotency_key)
            SELECT $1::bigint, $2, $3::bigint, $4 FROM lock
            ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL
            DO NOTHING
            RETURNING {_TASK_COLUMNS}""",
            user_id,
            type_,
            amount,
            idempotency_key,
            ENQUEUE_LOCK_CLASS,
        )
    except asyncpg.ForeignKeyViolationError:
        raise UnknownUser(user_id) from None
    if row is not None:
        return _task(row), True
    row = await fetchrow(
        db,
        f"SELECT {_TASK_COLUMNS} FROM balances.tasks WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        idempotency_key,
    )
    assert row is not None  # the task that conflicted with the insert
    first = _task(row)
    if (first.type, first.amount) != (type_, amount):
        raise IdempotencyMismatch(first)
    return first, False


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
            "SELECT pg_advisory_xact_lock($2, (u % 2147483647)::int)"
            " FROM unnest($1::bigint[]) AS u ORDER BY u",
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


async def get_task(db: Any, task_id: int) -> Task:
    """Raises: UnknownTask."""
    row = await fetchrow(
        db,
        f"SELECT {_TASK_COLUMNS} FROM balances.tasks WHERE id = $1",
        task_id,
    )
    if row is None:
        raise UnknownTask(task_id)
    return _task(row)


async def list_tasks(db: Any, user_id: int, *, after: int = 0, limit: int = 100) -> list[Task]:
    """A user's tasks with id > after in acceptance order, at most limit.

    Raises:
        UnknownUser: no such user.
    """
    rows = await fetch(
        db,
        f"SELECT {_TASK_COLUMNS} FROM balances.tasks"
        " WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        user_id,
        after,
        limit,
    )
    if not rows:
        await get_user(db, user_id)
    return [_task(r) for r in rows]


async def queue_state(db: Any) -> tuple[int, float]:
    """(tasks queued, seconds the oldest has waited; 0 when none), for /metrics."""
    row = await fetchrow(
        db,
        "SELECT count(*) AS n,"
        " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
        " FROM balances.tasks WHERE status = 'queued'",
    )
    assert row is not None  # aggregates: one row
    return row["n"], row["age"]


async def queued_count(db: Any) -> int:
    """Tasks still queued, over all users."""
    queued: int = await fetchval(db, "SELECT count(*) FROM balances.tasks WHERE status = 'queued'")
    return queued
