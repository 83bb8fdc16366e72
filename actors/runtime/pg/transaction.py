"""A transaction whose BEGIN carries its first statements: one round trip fewer.

    async with pool.acquire() as conn, begun(conn, "SET LOCAL plan_cache_mode = ..."):
        ...                                   # COMMIT at the end, ROLLBACK on an error

asyncpg's ``conn.transaction()`` spends a round trip on BEGIN alone; a request that is
a few statements long is bound by round trips (each costs the worker and the server a
wake-up, a system call each way and the protocol's work). PostgreSQL's simple query
protocol runs several statements sent at once, without parameters: BEGIN goes out
with whatever needs none (a SET LOCAL, a row lock on an id that is an int).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg

__all__ = ["begun"]


@contextlib.asynccontextmanager
async def begun(conn: asyncpg.Connection, *statements: str) -> AsyncIterator[None]:
    """BEGIN plus ``statements`` (no parameters, no results) in one round trip; COMMIT
    when the block ends, ROLLBACK when it raises."""
    await conn.execute("; ".join(("BEGIN", *statements)))
    try:
        yield
    except BaseException:
        # NOTE: after a cancelled query the connection may refuse another statement;
        # the pool then rolls back or discards it on release (a bare connection closes).
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            if not conn.is_closed() and conn.is_in_transaction():
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
