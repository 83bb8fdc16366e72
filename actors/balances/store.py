"""Every SQL statement of balances: users, amount tasks, the worker's apply step, leases.

Functions take `db`, an asyncpg pool (anything with ``acquire()``) or a connection, and
return typed results or raise typed errors; resources and actors never build SQL.

Ordering and exactly-once rest on three things the database settles:
- **Acceptance order** is the task id. An enqueue takes a per-user advisory lock before
  it draws the id, so a user's tasks commit in id order and a worker never sees task
  n+1 queued while task n is still uncommitted.
- **One applier per user at a time**: the worker locks the user rows it applies
  (``FOR NO KEY UPDATE SKIP LOCKED``; the foreign-key check of an enqueue takes only
  ``FOR KEY SHARE``, so enqueues never wait for a batch) and reads their queued tasks
  after it holds the locks. Shard leases decide who *tries*; the row locks make a
  stale lease holder harmless.
- **Exactly once**: each task's status, balance_after and the user's balance are written
  in the same transaction, every status change guarded by ``status = 'queued'``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

__all__ = [
    "CANCELLED",
    "DONE",
    "MAX_MONEY",
    "QUEUED",
    "REPLENISHMENT",
    "SCHEMA_DIR",
    "SHARDS",
    "TASK_TYPES",
    "WRITE_OFF",
    "ApplyResult",
    "IdempotencyMismatch",
    "StoreError",
    "Task",
    "UnknownTask",
    "UnknownUser",
    "User",
    "UsernameTaken",
    "apply_queued",
    "claim_shards",
    "create_user",
    "enqueue_many",
    "enqueue_task",
    "get_task",
    "get_user",
    "ping",
    "list_tasks",
    "list_users",
    "queue_state",
    "queued_count",
    "release_shards",
    "shard_endpoints",
    "shard_of",
]

SCHEMA_DIR = Path(__file__).parent / "schema"
"""The numbered migrations, applied at start by actors.runtime.pg.migrate."""
SHARDS = 64
"""Fixed number of shards (rows of balances.shard_leases, see 001_init.sql)."""
MAX_MONEY = 2**63 - 1
"""Largest balance or amount: PostgreSQL bigint."""
QUERY_TIMEOUT_S = 10.0
"""Every statement; a batch of a few thousand tasks takes well under a second."""
ENQUEUE_LOCK_CLASS = 0x62616C71  # 'balq': first key of the per-user enqueue lock
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


async def _fetch(db: Any, sql: str, *args: Any) -> list[asyncpg.Record]:
    async with _connection(db) as conn:
        return await conn.fetch(sql, *args, timeout=QUERY_TIMEOUT_S)


async def _fetchrow(db: Any, sql: str, *args: Any) -> asyncpg.Record | None:
    async with _connection(db) as conn:
        return await conn.fetchrow(sql, *args, timeout=QUERY_TIMEOUT_S)


async def _fetchval(db: Any, sql: str, *args: Any) -> Any:
    async with _connection(db) as conn:
        return await conn.fetchval(sql, *args, timeout=QUERY_TIMEOUT_S)


@contextlib.asynccontextmanager
async def _connection(db: Any) -> AsyncIterator[asyncpg.Connection]:
    if hasattr(db, "acquire"):
        async with db.acquire() as conn:
            yield conn
    else:
        yield db


# --- users -------------------------------------------------------------------------------

_USER_COLUMNS = "id, username, balance"


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["username"], row["balance"])


async def create_user(db: Any, username: str, balance: int) -> User:
    """Insert a user.

    Raises:
        UsernameTaken: the username exists.
    """
    try:
        row = await _fetchrow(
            db,
            f"INSERT INTO balances.users (username, balance) VALUES ($1, $2)"
            f" RETURNING {_USER_COLUMNS}",
            username,
            balance,
        )
    except asyncpg.UniqueViolationError:
        raise UsernameTaken(username) from None
    return _user(row)


async def get_user(db: Any, user_id: int) -> User:
    """Raises: UnknownUser."""
    row = await _fetchrow(
        db,
        f"SELECT {_USER_COLUMNS} FROM balances.users WHERE id = $1",
        user_id,
    )
    if row is None:
        raise UnknownUser(user_id)
    return _user(row)


async def list_users(db: Any, *, after: int = 0, limit: int = 100) -> list[User]:
    """Users with id > after, by id, at most limit."""
    rows = await _fetch(
        db,
        f"SELECT {_USER_COLUMNS} FROM balances.users WHERE id > $1 ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [_user(r) for r in rows]


# --- tasks -------------------------------------------------------------------------------

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
        row = await _fetchrow(
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
    row = await _fetchrow(
        db,
        f"SELECT {_TASK_COLUMNS} FROM balances.tasks WHERE user_id = $1 AND idempotency_key = $2",
        user_id,
        idempotency_key,
    )
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
    async with _connection(db) as conn, conn.transaction():
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
    return sorted(r["id"] for r in rows)


async def get_task(db: Any, task_id: int) -> Task:
    """Raises: UnknownTask."""
    row = await _fetchrow(
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
    rows = await _fetch(
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
    row = await _fetchrow(
        db,
        "SELECT count(*) AS n,"
        " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
        " FROM balances.tasks WHERE status = 'queued'",
    )
    return row["n"], row["age"]


async def queued_count(db: Any) -> int:
    """Tasks still queued, over all users."""
    return await _fetchval(db, "SELECT count(*) FROM balances.tasks WHERE status = 'queued'")


# --- the worker's apply step -----------------------------------------------------------

_LOCK_USERS = f"""
SELECT u.id, u.balance FROM balances.users u
WHERE u.id IN (
    SELECT DISTINCT t.user_id FROM balances.tasks t
    WHERE t.status = 'queued' AND t.user_id > $2
      AND (t.user_id % {SHARDS})::int IN (
          SELECT shard FROM balances.shard_leases WHERE owner = $1 AND lease_until > now())
    ORDER BY t.user_id LIMIT $3)
ORDER BY u.id
FOR NO KEY UPDATE OF u SKIP LOCKED
"""

_QUEUED_TASKS = """
SELECT t.id, t.user_id, t.type, t.amount FROM unnest($1::bigint[]) AS u(id)
CROSS JOIN LATERAL (
    SELECT id, user_id, type, amount FROM balances.tasks
    WHERE user_id = u.id AND status = 'queued' ORDER BY id LIMIT $2) AS t
ORDER BY t.user_id, t.id
"""

_WRITE = """
WITH t AS (
    UPDATE balances.tasks AS t
    SET status = v.status, reason = v.reason, balance_after = v.balance_after,
        applied_at = now()
    FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[])
         AS v(id, status, reason, balance_after)
    WHERE t.id = v.id AND t.status = 'queued'
    RETURNING t.id
), u AS (
    UPDATE balances.users AS u SET balance = v.balance
    FROM unnest($5::bigint[], $6::bigint[]) AS v(id, balance)
    WHERE u.id = v.id
    RETURNING u.id
)
SELECT (SELECT count(*) FROM t) AS tasks, (SELECT count(*) FROM u) AS users
"""


class _Batch:
    """The writes of one apply transaction, computed in memory against locked balances."""

    def __init__(self, balances: dict[int, int]):
        self.balances = balances
        self.start = dict(balances)
        self.ids: list[int] = []
        self.statuses: list[str] = []
        self.reasons: list[str | None] = []
        self.after: list[int | None] = []
        self.done = 0

    def apply(self, task_id: int, user_id: int, type_: str, amount: int) -> None:
        balance = self.balances[user_id]
        if type_ == WRITE_OFF:
            new = balance - amount
            reason = None if new >= 0 else f"insufficient funds: balance {balance} < {amount}"
        else:
            new = balance + amount
            reason = None if new <= MAX_MONEY else f"balance would exceed {MAX_MONEY}"
        self.ids.append(task_id)
        if reason is None:
            self.balances[user_id] = new
            self.statuses.append(DONE)
            self.reasons.append(None)
            self.after.append(new)
            self.done += 1
        else:
            self.statuses.append(CANCELLED)
            self.reasons.append(reason)
            self.after.append(None)

    def changed_users(self) -> tuple[list[int], list[int]]:
        ids = [u for u, b in self.balances.items() if b != self.start[u]]
        return ids, [self.balances[u] for u in ids]


async def apply_queued(
    db: Any, owner: str, *, after_user: int = 0, max_users: int = 200, per_user: int = 100
) -> ApplyResult:
    """Apply queued tasks of the shards `owner` holds an unexpired lease on, in ONE
    transaction: up to max_users users with id > after_user, each up to per_user of its
    oldest queued tasks, strictly in acceptance order. A write-off beyond the balance is
    cancelled with a reason and changes nothing.

    Returns:
        What was applied, and whether to call again at once (`more`, `next_after`).
    """
    async with _connection(db) as conn, conn.transaction():
        users = await conn.fetch(_LOCK_USERS, owner, after_user, max_users, timeout=QUERY_TIMEOUT_S)
        if not users:
            return ApplyResult(0, 0, 0, after_user > 0, 0)
        user_ids = [r["id"] for r in users]
        batch = _Batch({r["id"]: r["balance"] for r in users})
        tasks = await conn.fetch(_QUEUED_TASKS, user_ids, per_user, timeout=QUERY_TIMEOUT_S)
        per: dict[int, int] = {}
        for task_id, user_id, type_, amount in tasks:
            batch.apply(task_id, user_id, type_, amount)
            per[user_id] = per.get(user_id, 0) + 1
        changed, new_balances = batch.changed_users()
        row = await conn.fetchrow(
            _WRITE,
            batch.ids,
            batch.statuses,
            batch.reasons,
            batch.after,
            changed,
            new_balances,
            timeout=QUERY_TIMEOUT_S,
        )
        if (row["tasks"], row["users"]) != (len(batch.ids), len(changed)):
            # Under the row locks this cannot happen; if it does, apply nothing.
            raise RuntimeError(f"apply wrote {tuple(row)}, expected {len(batch.ids)} tasks")
    full_users = len(users) >= max_users
    capped = any(n >= per_user for n in per.values())
    return ApplyResult(
        users=len(users),
        done=batch.done,
        cancelled=len(batch.ids) - batch.done,
        more=full_users or capped or after_user > 0,
        next_after=user_ids[-1] if full_users else 0,
    )


# --- shard leases ----------------------------------------------------------------------


def _fair_share(owners: list[str], owner: str) -> int:
    """Shards `owner` should hold when `owners` (sorted) split SHARDS evenly."""
    if owner not in owners:
        return 0
    base, extra = divmod(SHARDS, len(owners))
    return base + (1 if owners.index(owner) < extra else 0)


async def claim_shards(db: Any, owner: str, endpoint: str, lease_s: float) -> list[int]:
    """Heartbeat, renew, and move toward this owner's fair share of the shards.

    Every worker of every instance calls this every lease_s/3 or so. Live owners (seen
    within lease_s) split the shards evenly; an owner above its share releases shards,
    one below claims free or expired ones (SKIP LOCKED, so two claimants never take the
    same shard). A restarted worker with the same owner name gets its leases back at once.

    Returns:
        The shards this owner holds now, sorted.
    """
    lease = dt.timedelta(seconds=lease_s)
    async with _connection(db) as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO balances.lease_owners (owner, endpoint, seen_until)"
            " VALUES ($1, $2, now() + $3::interval)"
            " ON CONFLICT (owner) DO UPDATE"
            " SET endpoint = excluded.endpoint, seen_until = excluded.seen_until",
            owner,
            endpoint,
            lease,
            timeout=QUERY_TIMEOUT_S,
        )
        owners = await conn.fetch(
            "SELECT owner FROM balances.lease_owners WHERE seen_until > now() ORDER BY owner",
            timeout=QUERY_TIMEOUT_S,
        )
        share = _fair_share([r["owner"] for r in owners], owner)
        held = await conn.fetch(
            "UPDATE balances.shard_leases SET lease_until = now() + $2::interval"
            " WHERE owner = $1 RETURNING shard",
            owner,
            lease,
            timeout=QUERY_TIMEOUT_S,
        )
        shards = sorted(r["shard"] for r in held)
        if len(shards) > share:
            extra = shards[share:]
            await conn.execute(
                "UPDATE balances.shard_leases SET owner = NULL, lease_until = '-infinity'"
                " WHERE owner = $1 AND shard = ANY($2::int[])",
                owner,
                extra,
                timeout=QUERY_TIMEOUT_S,
            )
            shards = shards[:share]
        elif len(shards) < share:
            got = await conn.fetch(
                "UPDATE balances.shard_leases SET owner = $1, lease_until = now() + $2::interval"
                " WHERE shard IN (SELECT shard FROM balances.shard_leases"
                "   WHERE owner IS NULL OR lease_until <= now()"
                "   ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)"
                " RETURNING shard",
                owner,
                lease,
                share - len(shards),
                timeout=QUERY_TIMEOUT_S,
            )
            shards = sorted(shards + [r["shard"] for r in got])
        await conn.execute(
            "DELETE FROM balances.lease_owners WHERE seen_until < now() - $1::interval",
            dt.timedelta(seconds=OWNER_FORGET_S),
            timeout=QUERY_TIMEOUT_S,
        )
    return shards


async def release_shards(db: Any, owner: str) -> None:
    """A clean stop: free this owner's shards for the others at once."""
    async with _connection(db) as conn, conn.transaction():
        await conn.execute(
            "UPDATE balances.shard_leases SET owner = NULL, lease_until = '-infinity'"
            " WHERE owner = $1",
            owner,
            timeout=QUERY_TIMEOUT_S,
        )
        await conn.execute(
            "DELETE FROM balances.lease_owners WHERE owner = $1", owner, timeout=QUERY_TIMEOUT_S
        )


async def shard_endpoints(db: Any) -> dict[int, str]:
    """shard -> endpoint of the worker holding its unexpired lease (for nudges)."""
    rows = await _fetch(
        db,
        "SELECT l.shard, o.endpoint FROM balances.shard_leases l"
        " JOIN balances.lease_owners o ON o.owner = l.owner WHERE l.lease_until > now()",
    )
    return {r["shard"]: r["endpoint"] for r in rows}


async def ping(db: Any) -> None:
    """One round trip: the database answers (readiness)."""
    await _fetchval(db, "SELECT 1")
