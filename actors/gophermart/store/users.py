"""Users: registration and the login lookup (HTTP side)."""

from __future__ import annotations

from typing import Any

from actors.gophermart.store.base import LoginTaken

__all__ = ["create_user", "find_user"]


async def create_user(db: Any, login: str, password_hash: str) -> int:
    """Register a user with a zero balance; returns the user id.

    Raises:
        LoginTaken: the login exists.
    """
    async with db.acquire() as conn, conn.transaction():
        user_id: int | None = await conn.fetchval(
            "INSERT INTO gophermart.users (login, password_hash) VALUES ($1, $2)"
            " ON CONFLICT (login) DO NOTHING RETURNING id",
            login,
            password_hash,
        )
        if user_id is None:
            raise LoginTaken(login)
        await conn.execute("INSERT INTO gophermart.balances (user_id) VALUES ($1)", user_id)
    return user_id


async def find_user(db: Any, login: str) -> tuple[int, str] | None:
    """(user id, password hash) for a login, or None."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT id, password_hash FROM gophermart.users WHERE login = $1", login
        )
    return None if row is None else (row["id"], row["password_hash"])
