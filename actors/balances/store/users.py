"""Users: create, get, list by id."""

from __future__ import annotations

from typing import Any

import asyncpg

from actors.balances.store.base import UnknownUser, User, UsernameTaken, fetch, fetchrow

_USER_COLUMNS = "id, username, balance"


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["username"], row["balance"])


async def create_user(db: Any, username: str, balance: int) -> User:
    """Insert a user.

    Raises:
        UsernameTaken: the username exists.
    """
    try:
        row = await fetchrow(
            db,
            f"INSERT INTO balances.users (username, balance) VALUES ($1, $2)"
            f" RETURNING {_USER_COLUMNS}",
            username,
            balance,
        )
    except asyncpg.UniqueViolationError:
        raise UsernameTaken(username) from None
    assert row is not None  # INSERT ... RETURNING of one row
    return _user(row)


async def get_user(db: Any, user_id: int) -> User:
    """Raises: UnknownUser."""
    row = await fetchrow(
        db,
        f"SELECT {_USER_COLUMNS} FROM balances.users WHERE id = $1",
        user_id,
    )
    if row is None:
        raise UnknownUser(user_id)
    return _user(row)


async def list_users(db: Any, *, after: int = 0, limit: int = 100) -> list[User]:
    """Users with id > after, by id, at most limit."""
    rows = await fetch(
        db,
        f"SELECT {_USER_COLUMNS} FROM balances.users WHERE id > $1 ORDER BY id LIMIT $2",
        after,
        limit,
    )
    return [_user(r) for r in rows]
