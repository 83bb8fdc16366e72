"""The store's shared parts: limits, statuses, typed results and errors, connections."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

SCHEMA_DIR = Path(__file__).parent.parent / "schema"
"""The numbered migrations, applied at start by actors.runtime.pg.migrate."""
SHARDS = 64
"""Fixed number of shards (rows of balances.shard_leases, see 001_init.sql)."""
MAX_MONEY = 2**63 - 1
"""Largest balance or amount: PostgreSQL bigint."""
QUERY_TIMEOUT_S = 10.0
"""Every statement; a batch of a few thousand tasks takes well under a second."""
ENQUEUE_LOCK_CLASS = 0x62616C71  # 'balq': first key of the per-user enqueue lock
SHARD_CHANNEL_PREFIX = "balances_shard_"
"""shard_channel(n) is this plus n: one channel per shard, so PostgreSQL delivers a
notification only to the worker listening for that shard."""
OWNER_FORGET_S = 60
"""A lease owner not seen for this long is deleted from balances.lease_owners."""

QUEUED, DONE, CANCELLED = "queued", "done", "cancelled"
REPLENISHMENT, WRITE_OFF = "replenishment", "write-off"
TASK_TYPES = (REPLENISHMENT, WRITE_OFF)


class StoreError(Exception):
    """Base of the typed errors below."""


class UsernameTaken(StoreError):
    """Another user has this username."""


class UnknownUser(StoreError):
    """No user has this id."""


class UnknownTask(StoreError):
    """No task has this id."""


class IdempotencyMismatch(StoreError):
    """The Idempotency-Key was used before, for this user, with another type or amount."""

    def __init__(self, task: Task):
        super().__init__(f"Idempotency-Key was first used for task {task.id}")
        self.task = task


@dataclass(frozen=True, slots=True)
class User:
    id: int
    username: str
    balance: int


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    user_id: int
    type: str
    amount: int
    status: str
    reason: str | None
    balance_after: int | None
    created_at: dt.datetime
    applied_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What one apply_queued transaction did."""

    users: int
    """Users locked and applied."""
    done: int
    cancelled: int
    more: bool
    """More may be queued in the owned shards: call again at once."""
    next_after: int
    """The user-id cursor for the next call (0 = start over)."""

    @property
    def tasks(self) -> int:
        return self.done + self.cancelled


def shard_of(user_id: int) -> int:
    """The shard a user's tasks belong to."""
    return user_id % SHARDS


def shard_channel(shard: int) -> str:
    """The LISTEN/NOTIFY channel that wakes the worker holding this shard's lease: an
    enqueue notifies it in its own statement, so the wake-up comes with the commit."""
    return f"{SHARD_CHANNEL_PREFIX}{shard}"


# One statement on a pool or a connection, with the store's timeout (for the modules of
# this package; not re-exported).


async def fetch(db: Any, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with connection(db) as conn:
        return await conn.fetch(sql, *args, timeout=QUERY_TIMEOUT_S)


async def fetchrow(db: Any, sql: str, *args: Any) -> asyncpg.Record | None:
    async with connection(db) as conn:
        return await conn.fetchrow(sql, *args, timeout=QUERY_TIMEOUT_S)


async def fetchval(db: Any, sql: str, *args: Any) -> Any:
    async with connection(db) as conn:
        return await conn.fetchval(sql, *args, timeout=QUERY_TIMEOUT_S)


@contextlib.asynccontextmanager
async def connection(db: Any) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the pool `db` for a transaction, or `db` itself."""
    if hasattr(db, "acquire"):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


@contextlib.asynccontextmanager
async def begun(conn: asyncpg.Connection, *statements: str) -> AsyncIterator[None]:
    """A transaction whose BEGIN carries ``statements`` (no parameters, no results) in the
    same round trip; COMMIT when the block ends, ROLLBACK when it raises.

    NOTE: ``conn.transaction()`` spends a round trip on BEGIN alone, and an apply is a few
    statements long: each round trip costs the worker and the server a wake-up. The
    simple query protocol runs several statements sent at once, without parameters.
    """
    await conn.execute("; ".join(("BEGIN", *statements)))
    try:
        yield
    except BaseException:
        # NOTE: after a cancelled query the connection may refuse another statement; the
        # pool then rolls back or discards it on release (a bare connection closes).
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            if not conn.is_closed() and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def ping(db: Any) -> None:
    """One round trip: the database answers (readiness)."""
    await fetchval(db, "SELECT 1")
