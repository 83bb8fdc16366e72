"""The worker's apply step: one transaction applies many users' queued tasks in order."""

from __future__ import annotations

from typing import Any

from actors.balances.store.base import (
    CANCELLED,
    DONE,
    MAX_MONEY,
    QUERY_TIMEOUT_S,
    SHARDS,
    WRITE_OFF,
    ApplyResult,
    begun,
    connection,
)

_NEXT_QUEUED_USER = """(
    SELECT t.user_id FROM balances.tasks t WHERE t.status = 'queued' AND t.user_id > {after}
    ORDER BY t.user_id LIMIT 1)"""
"""The first user after `after` with a queued task: one probe of the index tasks_queued."""

_LOCK_USERS = f"""
WITH RECURSIVE owned AS (
    SELECT ARRAY(SELECT shard FROM balances.shard_leases
                 WHERE owner = $1 AND lease_until > now()) AS shards
), walk (user_id, found) AS (
    SELECT q.user_id, ((q.user_id % {SHARDS})::int = ANY (o.shards))::int
    FROM owned o, LATERAL {_NEXT_QUEUED_USER.format(after="$2")} AS q
    WHERE cardinality(o.shards) > 0
  UNION ALL
    SELECT q.user_id, w.found + ((q.user_id % {SHARDS})::int = ANY (o.shards))::int
    FROM walk w, owned o, LATERAL {_NEXT_QUEUED_USER.format(after="w.user_id")} AS q
    WHERE w.found < $3
)
SELECT u.id, u.balance FROM balances.users u
WHERE u.id = ANY (ARRAY(
    SELECT w.user_id FROM walk w, owned o
    WHERE (w.user_id % {SHARDS})::int = ANY (o.shards)
    ORDER BY w.user_id LIMIT $3))
ORDER BY u.id
FOR NO KEY UPDATE OF u SKIP LOCKED
"""
"""Lock the next users (by id, after the cursor $2) with queued tasks in the shards $1
holds, at most $3. NOTE: a loose index scan: `walk` hops from each user with a queued
task to the next over the partial index tasks_queued, one probe per user, and stops
once it has passed $3 users of the owned shards. SELECT DISTINCT over the queued tasks
instead read every queued row, hash-joined on the shards and sorted them before its
LIMIT whenever the statistics were stale (12 ms with 17k queued, 170 ms with 170k; see
bench/balances/lock_users_plan.py). The walk also steps over queued users of shards
owned by others: about max_users / (share of shards held) probes when the owned
shards are busy, every queued user after $2 when they hold almost nothing. The final
ORDER BY sorts only the walked users. = ANY (ARRAY(...)) keeps the users lookup on its
primary key; IN (...) let the planner hash-join a sequential scan of every user."""

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
    WHERE t.id = v.id AND t.id = ANY ($1::bigint[]) AND t.status = 'queued'
    RETURNING t.id
), u AS (
    UPDATE balances.users AS u SET balance = v.balance
    FROM unnest($5::bigint[], $6::bigint[]) AS v(id, balance)
    WHERE u.id = v.id AND u.id = ANY ($5::bigint[])
    RETURNING u.id
)
SELECT (SELECT count(*) FROM t) AS tasks, (SELECT count(*) FROM u) AS users
"""
"""Every task's outcome and every changed balance, in one statement. NOTE: the redundant
`id = ANY (...)` makes both updates probe primary keys; joined on unnest() alone, the
planner hash-joined a sequential scan of the whole task history."""


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
    # NOTE: asyncpg prepares statements, and after five runs PostgreSQL may switch to a
    # generic plan that cannot see the arrays: for _WRITE it scanned the task history,
    # 20x slower at a million rows. Plan each batch for its own arrays (set with BEGIN,
    # one round trip for both).
    async with connection(db) as conn, begun(conn, "SET LOCAL plan_cache_mode = force_custom_plan"):
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
        assert row is not None  # its last SELECT is of aggregates: one row
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
