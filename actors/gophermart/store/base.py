"""What every part of gophermart's store shares: the schema, the errors, readiness.

Functions of the store take ``db``, an asyncpg pool or a LazyPool (anything with
``acquire()``; typed ``Any`` as in actors.balances.store), run one short explicit
transaction and hold no network call but the database's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = [
    "ORDERS_CHANNEL",
    "SCHEMA_DIR",
    "InsufficientFunds",
    "LoginTaken",
    "OrderAlreadyWithdrawn",
    "OrderOwnedByAnother",
    "StoreError",
    "UnknownUser",
    "ping",
]

SCHEMA_DIR = Path(__file__).parent.parent / "schema"
"""The numbered migrations, applied at start by actors.runtime.pg.migrate."""
ORDERS_CHANNEL = "gophermart_orders"
"""The LISTEN/NOTIFY channel of new orders: the HTTP side notifies it after an upload
commits, and every instance's poller listens and claims what is due."""


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


async def ping(db: Any) -> None:
    """One round trip (readiness)."""
    async with db.acquire() as conn:
        await conn.fetchval("SELECT 1")
