"""Orders a user uploads and lists (HTTP side); the poller's side is in polling.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import asyncpg

from actors.gophermart.store.base import OrderOwnedByAnother, UnknownUser

__all__ = ["Order", "list_orders", "upload_order"]


@dataclass(frozen=True, slots=True)
class Order:
    number: str
    status: str
    accrual_kop: int | None
    uploaded_at: dt.datetime


async def upload_order(db: Any, user_id: int, number: str) -> bool:
    """Attach an order number to a user.

    Returns:
        True when the order is new (202), False when this user uploaded it before (200).

    Raises:
        OrderOwnedByAnother: another user uploaded it.
        UnknownUser: no such user.
    """
    async with db.acquire() as conn:
        try:
            owner: int | None = await conn.fetchval(
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


async def list_orders(db: Any, user_id: int) -> list[Order]:
    """A user's orders, oldest upload first."""
    async with db.acquire() as conn:
        rows = await conn.fetch(
            "SELECT number, status, accrual_kop, uploaded_at FROM gophermart.orders"
            " WHERE user_id = $1 ORDER BY uploaded_at, number",
            user_id,
        )
    return [Order(*row) for row in rows]
