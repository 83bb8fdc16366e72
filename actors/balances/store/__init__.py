"""Every SQL statement of balances, one module per concern: `users`, `enqueue` (one task,
a group commit, a backlog), `tasks` (read), `apply` (the worker's step), `leases` (shard
ownership); `base` holds the limits, typed results and errors. Import the names from
here (`from actors.balances import store`).

Functions take `db`, an asyncpg pool (anything with ``acquire()``) or a connection, and
return typed results or raise typed errors; resources and actors never build SQL.

Ordering and exactly-once rest on three things the database settles:
- **Acceptance order** is the task id. An enqueue takes a per-user advisory lock before
  it draws the id (a batch takes each of its users' locks, in key order, before any),
  so a user's tasks commit in id order and a worker never sees task n+1 queued while
  task n is still uncommitted.
- **One applier per user at a time**: the worker locks the user rows it applies
  (``FOR NO KEY UPDATE SKIP LOCKED``; the foreign-key check of an enqueue takes only
  ``FOR KEY SHARE``, so enqueues never wait for a batch) and reads their queued tasks
  after it holds the locks. Shard leases decide who *tries*; the row locks make a
  stale lease holder harmless.
- **Exactly once**: each task's status, balance_after and the user's balance are written
  in the same transaction, every status change guarded by ``status = 'queued'``.
"""

from actors.balances.store.apply import apply_queued
from actors.balances.store.base import (
    CANCELLED,
    DONE,
    MAX_MONEY,
    QUEUED,
    REPLENISHMENT,
    SCHEMA_DIR,
    SHARDS,
    TASK_TYPES,
    WRITE_OFF,
    ApplyResult,
    IdempotencyMismatch,
    StoreError,
    Task,
    UnknownTask,
    UnknownUser,
    User,
    UsernameTaken,
    ping,
    shard_channel,
    shard_of,
)
from actors.balances.store.enqueue import (
    Accepted,
    TaskRequest,
    enqueue_batch,
    enqueue_many,
    enqueue_task,
)
from actors.balances.store.leases import claim_shards, release_shards, shard_endpoints
from actors.balances.store.tasks import get_task, list_tasks, queue_state, queued_count
from actors.balances.store.users import create_user, get_user, list_users

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
    "Accepted",
    "ApplyResult",
    "IdempotencyMismatch",
    "StoreError",
    "Task",
    "TaskRequest",
    "UnknownTask",
    "UnknownUser",
    "User",
    "UsernameTaken",
    "apply_queued",
    "claim_shards",
    "create_user",
    "enqueue_batch",
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
    "shard_channel",
    "shard_endpoints",
    "shard_of",
]
