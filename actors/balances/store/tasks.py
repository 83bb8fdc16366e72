"""Amount tasks: read one or a user's, queue depth (enqueue: `enqueue`)."""

from __future__ import annotations

from typing import Any

import asyncpg

from actors.balances.store.base import Task, UnknownTask, fetch, fetchrow, fetchval
from actors.balances.store.users import get_user

TASK_COLUMNS = "id, user_id, type, amount, status, reason, balance_after, created_at, applied_at"
"""A Task's columns in its fields' order (task_from_row)."""


def task_from_row(row: asyncpg.Record) -> Task:
    return Task(*(row[i] for i in range(9)))


async def get_task(db: Any, task_id: int) -> Task:
    """Raises: UnknownTask."""
    row = await fetchrow(
        db,
        f"SELECT {TASK_COLUMNS} FROM balances.tasks WHERE id = $1",
        task_id,
    )
    if row is None:
        raise UnknownTask(task_id)
    return task_from_row(row)


async def list_tasks(db: Any, user_id: int, *, after: int = 0, limit: int = 100) -> list[Task]:
    """A user's tasks with id > after in acceptance order, at most limit.

    Raises:
        UnknownUser: no such user.
    """
    rows = await fetch(
        db,
        f"SELECT {TASK_COLUMNS} FROM balances.tasks"
        " WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT $3",
        user_id,
        after,
        limit,
    )
    if not rows:
        await get_user(db, user_id)
    return [task_from_row(r) for r in rows]


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
