"""Every SQL statement of gophermart: named async functions, typed results and errors.

Each function takes an asyncpg pool (or anything with `acquire()`), runs one short
explicit transaction and holds no network call but the database's. Contention is
settled by PostgreSQL: unique keys become `LoginTaken`, `OrderOwnedByAnother`,
`OrderAlreadyWithdrawn`; a withdrawal is one conditional UPDATE (`InsufficientFunds`);
a credit is one statement that changes the order's status and the balance together,
guarded by the status, so it happens once; the poller leases orders with
`FOR UPDATE SKIP LOCKED`, so two instances never ask about the same order at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

__all__ = [
    "SCHEMA_DIR",
    "Balance",
    "Final",
    "InsufficientFunds",
    "LoginTaken",
    "Order",
    "OrderAlreadyWithdrawn",
    "OrderOwnedByAnother",
    "Retry",
    "StoreError",
    "UnknownUser",
    "Withdrawal",
    "accrual_pause_s",
    "claim_orders",
    "create_user",
    "find_user",
    "finish_orders",
    "get_balance",
    "list_orders",
    "list_withdrawals",
    "pause_accrual",
    "ping",
    "poll_state",
    "release_leases",
    "reschedule_orders",
    "upload_order",
    "withdraw",
]

PENDING = ("NEW", "PROCESSING")
DEADLOCK_RETRIES = 5
"""Two pollers crediting overlapping users in different orders may deadlock; PostgreSQL
aborts one transaction whole, and it is retried (nothing was applied)."""


SCHEMA_DIR = Path(__file__).with_name("schema")
"""The numbered migrations, applied at start by actors.runtime.pg.migrate."""


class StoreError(Exception):
    """A refusal the caller maps to an HTTP status."""


class LoginTaken(StoreError):
    """The login is registered already (409)."""


class OrderOwnedByAnother(StoreError):
    """The order number was uploaded by another user (409)."""


class OrderAlreadyWithdrawn(StoreError):
    """A withdrawal against this order number exists already (409)."""


class UnknownUser(StoreError):
    """A valid token names a user this database does not have (it was reset): 401."""


class InsufficientFunds(StoreError):
    """The balance is lower than the sum to withdraw (402)."""


@dataclass(frozen=True, slots=True)
class Order:
    number: str
    status: str
    accrual_kop: int | None
    uploaded_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Withdrawal:
    order: str
    sum_kop: int
    processed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Balance:
    current_kop: int
    withdrawn_kop: int


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


async def ping(db) -> None:
    """One round trip (readiness)."""
    async with db.acquire() as conn:
        await conn.fetchval("SELECT 1")


# --- users -----------------------------------------------------------------------------


async def create_user(db, login: str, password_hash: str) -> int:
    """Register a user with a zero balance; returns the user id.

    Raises:
        LoginTaken: the login exists.
    """
    async with db.acquire() as conn, conn.transaction():
        user_id = await conn.fetchval(
            "INSERT INTO gophermart.users (login, password_hash) VALUES ($1, $2)"
            " ON CONFLICT (login) DO NOTHING RETURNING id",
            login,
            password_hash,
        )
        if user_id is None:
            raise LoginTaken(login)
        await conn.execute("INSERT INTO gophermart.balances (user_id) VALUES ($1)", user_id)
    return user_id


async def find_user(db, login: str) -> tuple[int, str] | None:
    """(user id, password hash) for a login, or None."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, password_hash FROM gophermart.users WHERE login = $1", login
        )
    return None if row is None else (row["id"], row["password_hash"])


# --- orders ----------------------------------------------------------------------------


async def upload_order(db, user_id: int, number: str) -> bool:
    """Attach an order number to a user.

    Returns:
        True when the order is new (202), False when this user uploaded it before (200).

    Raises:
        OrderOwnedByAnother: another user uploaded it.
        UnknownUser: no such user.
    """
    async with db.acquire() as conn:
        try:
            owner = await conn.fetchval(
                "WITH ins AS (INSERT INTO gophermart.orders (number, user_id) VALUES ($1, $2)"
                " ON CONFLICT (number) DO NOTHING RETURNING user_id)"
                " SELECT -1 FROM ins UNION ALL"
                " SELECT user_id FROM gophermart.orders WHERE number = $1",
                number,
                user_id,
            )
        except asyncpg.ForeignKeyViolationError:
            raise UnknownUser(user_id) from None
        if owner is None:
            # NOTE: a racing upload of the same number committed after this statement's
            # snapshot was taken: ON CONFLICT saw it, the SELECT did not. Look again.
            owner = await conn.fetchval(
                "SELECT user_id FROM gophermart.orders WHERE number = $1", number
            )
    if owner == -1:
        return True
    if owner != user_id:
        raise OrderOwnedByAnother(number)
    return False


async def list_orders(db, user_id: int) -> list[Order]:
    """A user's orders, oldest upload first."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT number, status, accrual_kop, uploaded_at FROM gophermart.orders"
            " WHERE user_id = $1 ORDER BY uploaded_at, number",
            user_id,
        )
    return [Order(*row) for row in rows]


# --- balance and withdrawals -----------------------------------------------------------


async def get_balance(db, user_id: int) -> Balance:
    """The user's balance. Raises UnknownUser when there is no such user."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT current_kop, withdrawn_kop FROM gophermart.balances WHERE user_id = $1", user_id
        )
    if row is None:
        raise UnknownUser(user_id)
    return Balance(*row)


async def withdraw(db, user_id: int, order: str, sum_kop: int) -> Balance:
    """Take `sum_kop` off a user's balance against a new order number.

    One statement (one round trip, its own transaction): a conditional UPDATE takes the
    money only if it is there and the number is unused, and the withdrawal row is
    inserted from its result. A number used by a concurrent withdrawal that committed
    first violates the primary key, and the whole statement, the UPDATE included, is
    undone. Only a refusal asks again, to say why.

    Returns:
        The balance after the withdrawal.

    Raises:
        OrderAlreadyWithdrawn: the order number was used for a withdrawal before.
        UnknownUser: no such user.
        InsufficientFunds: the current balance is below `sum_kop`.
    """
    async with db.acquire() as conn:
        try:
            row = await conn.fetchrow(_WITHDRAW, order, user_id, sum_kop)
        except asyncpg.UniqueViolationError:
            raise OrderAlreadyWithdrawn(order) from None
        if row is not None:
            return Balance(*row)
        # NOTE: the precedence of the two-statement version: a used number (409) before
        # an unknown user (401) before too little money (402).
        used, known = await conn.fetchrow(
            "SELECT EXISTS (SELECT 1 FROM gophermart.withdrawals WHERE order_number = $1),"
            " EXISTS (SELECT 1 FROM gophermart.users WHERE id = $2)",
            order,
            user_id,
        )
    if used:
        raise OrderAlreadyWithdrawn(order)
    if not known:
        raise UnknownUser(user_id)
    raise InsufficientFunds(order)


_WITHDRAW = """
WITH taken AS (
    UPDATE gophermart.balances SET current_kop = current_kop - $3,
        withdrawn_kop = withdrawn_kop + $3
    WHERE user_id = $2 AND current_kop >= $3
      AND NOT EXISTS (SELECT 1 FROM gophermart.withdrawals WHERE order_number = $1)
    RETURNING current_kop, withdrawn_kop),
recorded AS (
    INSERT INTO gophermart.withdrawals (order_number, user_id, sum_kop)
    SELECT $1, $2, $3 FROM taken)
SELECT current_kop, withdrawn_kop FROM taken"""


async def list_withdrawals(db, user_id: int) -> list[Withdrawal]:
    """A user's withdrawals, oldest first."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT order_number, sum_kop, processed_at FROM gophermart.withdrawals"
            " WHERE user_id = $1 ORDER BY processed_at, order_number",
            user_id,
        )
    return [Withdrawal(*row) for row in rows]


# --- the accrual poller ----------------------------------------------------------------


async def release_leases(db, owner: str) -> int:
    """Free the leases a previous run of this instance held (after a crash)."""
    async with db.acquire() as conn:
        status = await conn.execute(
            "UPDATE gophermart.orders SET lease_owner = NULL, lease_until = NULL"
            " WHERE lease_owner = $1 AND status IN ('NEW', 'PROCESSING')",
            owner,
        )
    return int(status.split()[-1])


async def claim_orders(db, owner: str, limit: int, lease_s: float) -> list[tuple[str, int]]:
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


async def finish_orders(db, finals: Iterable[Final]) -> int:
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
                return await conn.fetchval(_FINISH, *args)
        except asyncpg.DeadlockDetectedError:
            if attempt == DEADLOCK_RETRIES - 1:
                raise
    return 0


async def reschedule_orders(db, owner: str, retries: Iterable[Retry]) -> None:
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


async def pause_accrual(db, seconds: float) -> None:
    """Nobody asks the accrual system for `seconds` from now (a 429's Retry-After)."""
    async with db.acquire() as conn:
        await conn.execute(
            "UPDATE gophermart.accrual_pause SET until = greatest(until,"
            " clock_timestamp() + make_interval(secs => $1)) WHERE id = 1",
            float(seconds),
        )


async def accrual_pause_s(db) -> float:
    """Seconds left of the shared pause (0 when none)."""
    async with db.acquire() as conn:
        left = await conn.fetchval(
            "SELECT greatest(0, extract(epoch FROM until - clock_timestamp()))::float8"
            " FROM gophermart.accrual_pause WHERE id = 1"
        )
    return left or 0.0


async def poll_state(db) -> tuple[int, float, float]:
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
