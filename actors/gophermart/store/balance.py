"""A user's balance and withdrawals (HTTP side); accruals credit it in polling.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from actors.gophermart.store.base import InsufficientFunds, OrderAlreadyWithdrawn, UnknownUser

__all__ = ["Balance", "Withdrawal", "get_balance", "list_withdrawals", "withdraw"]


@dataclass(frozen=True, slots=True)
class Withdrawal:
    order: str
    sum_kop: int
    processed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Balance:
    current_kop: int
    withdrawn_kop: int


async def get_balance(db: Any, user_id: int) -> Balance:
    """The user's balance. Raises UnknownUser when there is no such user."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT current_kop, withdrawn_kop FROM gophermart.balances WHERE user_id = $1", user_id
        )
    if row is None:
        raise UnknownUser(user_id)
    return Balance(*row)


async def withdraw(db: Any, user_id: int, order: str, sum_kop: int) -> Balance:
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


async def list_withdrawals(db: Any, user_id: int) -> list[Withdrawal]:
    """A user's withdrawals, oldest first."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT order_number, sum_kop, processed_at FROM gophermart.withdrawals"
            " WHERE user_id = $1 ORDER BY processed_at, order_number",
            user_id,
        )
    return [Withdrawal(*row) for row in rows]
