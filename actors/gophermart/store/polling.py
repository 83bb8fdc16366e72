"""The accrual poller's SQL: leasing due orders, applying the accrual system's answers.

Orders are leased with ``FOR UPDATE SKIP LOCKED``, so two instances never ask about
the same order at once; a final answer changes the order's status and credits the
balance in one statement guarded by the status, so it happens once; a 429 pauses
every poller through one shared row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = [
    "Final",
    "Retry",
    "accrual_pause_s",
    "claim_orders",
    "finish_orders",
    "pause_accrual",
    "poll_state",
    "release_leases",
    "reschedule_orders",
]

DEADLOCK_RETRIES = 5
"""Two pollers crediting overlapping users in different orders may deadlock; PostgreSQL
aborts one transaction whole, and it is retried (nothing was applied)."""


@dataclass(frozen=True, slots=True)
class Final:
    """The accrual system's final answer for an order: PROCESSED (with kopecks) or INVALID."""

    number: str
    status: str
    accrual_kop: int | None


@dataclass(frozen=True, slots=True)
class Retry:
    """Ask again after `delay_s`; `status` PROCESSING when the accrual system said so."""

    number: str
    delay_s: float
    status: str | None = None


async def release_leases(db: Any, owner: str) -> int:
    """Free the leases a previous run of this instance held (after a crash)."""
    async with db.acquire() as conn:
        status = await conn.execute(
            "UPDATE gophermart.orders SET lease_owner = NULL, lease_until = NULL"
            " WHERE lease_owner = $1 AND status IN ('NEW', 'PROCESSING')",
            owner,
        )
    return int(status.split()[-1])


async def claim_orders(db: Any, owner: str, limit: int, lease_s: float) -> list[tuple[str, int]]:
    """Lease up to `limit` due NEW/PROCESSING orders for `lease_s` seconds.

    Rows another poller is claiming at this moment are skipped (SKIP LOCKED), and
    leased rows are not due until their lease ends, so no order is asked about by two
    pollers at once. Nothing is claimed during the shared accrual pause. Oldest due first.

    Returns:
        (number, attempts so far) per claimed order.
    """
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "UPDATE gophermart.orders SET lease_owner = $1,"
            " lease_until = clock_timestamp() + make_interval(secs => $3)"
            " WHERE number IN (SELECT number FROM gophermart.orders"
            "   WHERE status IN ('NEW', 'PROCESSING') AND next_poll_at <= clock_timestamp()"
            "   AND (lease_until IS NULL OR lease_until < clock_timestamp())"
            "   AND NOT EXISTS (SELECT 1 FROM gophermart.accrual_pause"
            "                   WHERE until > clock_timestamp())"
            "   ORDER BY next_poll_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
            " RETURNING number, attempts",
            owner,
            limit,
            float(lease_s),
        )
    return [(row["number"], row["attempts"]) for row in rows]


_FINISH = """
WITH r AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) AS r(number, status, kop)
), o AS (
    UPDATE gophermart.orders SET status = r.status, accrual_kop = r.kop,
                      lease_owner = NULL, lease_until = NULL
    FROM r
    WHERE orders.number = r.number AND orders.status IN ('NEW', 'PROCESSING')
    RETURNING orders.user_id, orders.accrual_kop
), c AS (
    UPDATE gophermart.balances SET current_kop = balances.current_kop + s.total
    FROM (SELECT user_id, sum(accrual_kop) AS total FROM o
          WHERE accrual_kop > 0 GROUP BY user_id) AS s
    WHERE balances.user_id = s.user_id
    RETURNING 1
)
SELECT (SELECT count(*) FROM o) AS changed
"""


async def finish_orders(db: Any, finals: Iterable[Final]) -> int:
    """Make orders final and credit PROCESSED accruals, in one statement.

    An order already final is left alone (the status guard), so a repeated answer, a
    second poller or a retry after a crash never credits twice.

    Returns:
        How many orders changed status now.
    """
    finals = list(finals)
    if not finals:
        return 0
    args = (
        [f.number for f in finals],
        [f.status for f in finals],
        [f.accrual_kop if f.status == "PROCESSED" else None for f in finals],
    )
    for attempt in range(DEADLOCK_RETRIES):
        try:
            async with db.acquire() as conn:
                changed: int = await conn.fetchval(_FINISH, *args)
                return changed
        except asyncpg.DeadlockDetectedError:
            if attempt == DEADLOCK_RETRIES - 1:
                raise
    return 0


async def reschedule_orders(db: Any, owner: str, retries: Iterable[Retry]) -> None:
    """Release `owner`'s leased orders to be asked again after their delay (status
    PROCESSING when the accrual system said it is working on them; NEW stays NEW
    otherwise). An order whose lease passed to another poller meanwhile is left alone."""
    retries = list(retries)
    if not retries:
        return
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE gophermart.orders SET status = coalesce(r.status, orders.status),"
            " next_poll_at = clock_timestamp() + make_interval(secs => r.delay),"
            " attempts = attempts + 1, lease_owner = NULL, lease_until = NULL"
            " FROM unnest($1::text[], $2::text[], $3::float8[]) AS r(number, status, delay)"
            " WHERE orders.number = r.number AND orders.status IN ('NEW', 'PROCESSING')"
            " AND orders.lease_owner = $4",
            [r.number for r in retries],
            [r.status for r in retries],
            [float(r.delay_s) for r in retries],
            owner,
        )


async def pause_accrual(db: Any, seconds: float) -> None:
    """Nobody asks the accrual system for `seconds` from now (a 429's Retry-After)."""
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE gophermart.accrual_pause SET until = greatest(until,"
            " clock_timestamp() + make_interval(secs => $1)) WHERE id = 1",
            float(seconds),
        )


async def accrual_pause_s(db: Any) -> float:
    """Seconds left of the shared pause (0 when none)."""
    async with db.acquire() as conn:
        left = await conn.fetchval(
            "SELECT greatest(0, extract(epoch FROM until - clock_timestamp()))::float8"
            " FROM gophermart.accrual_pause WHERE id = 1"
        )
    return left or 0.0


async def poll_state(db: Any) -> tuple[int, float, float]:
    """(orders waiting for a final answer, seconds the oldest has waited, seconds left of
    the shared accrual pause), for /metrics."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT count(*) AS pending,"
            " coalesce(extract(epoch FROM clock_timestamp() - min(uploaded_at)), 0)::float8"
            "  AS oldest,"
            " (SELECT greatest(0, extract(epoch FROM until - clock_timestamp()))::float8"
            "  FROM gophermart.accrual_pause WHERE id = 1) AS pause"
            " FROM gophermart.orders WHERE status IN ('NEW', 'PROCESSING')"
        )
    return row["pending"], row["oldest"], row["pause"] or 0.0
