"""The HTTP side's history report: a period's add/remove rows as CSV lines, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = ["HISTORY_PREFETCH_ROWS", "history_lines"]

HISTORY_PREFETCH_ROWS = 1000  # rows per round trip of the history cursor
HISTORY_FETCH_TIMEOUT_S = 60.0


async def history_lines(
    pool: LazyPool,
    start: datetime,
    end: datetime,
    user_id: int | None = None,
    words: tuple[str, str] = ("add", "remove"),
    batch_rows: int = HISTORY_PREFETCH_ROWS,
) -> AsyncIterator[list[str]]:
    """History with start <= at < end as text lines, in time order, in batches.

    Each line is `user_id;slug;operation;timestamp` (no newline): operation is words[0]
    for an addition and words[1] for a removal, timestamp RFC 3339 UTC with microseconds.
    PostgreSQL formats the lines (2.5 times faster than formatting records in Python).
    Reads through a server-side cursor inside one transaction: memory stays flat however
    many rows the period holds. The connection is held until the iterator is exhausted
    or closed.
    """
    query = (
        "SELECT user_id::text || ';' || slug || ';' "
        "|| CASE operation WHEN 'add' THEN $3 ELSE $4 END || ';' "
        """|| to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') """
        "FROM segments.history WHERE at >= $1 AND at < $2 ORDER BY at, id"
    )
    args: tuple[Any, ...] = (start, end, *words)
    if user_id is not None:
        query = query.replace("WHERE", "WHERE user_id = $5 AND")
        args += (user_id,)
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        cursor = await conn.cursor(query, *args, timeout=HISTORY_FETCH_TIMEOUT_S)
        while True:
            rows = await cursor.fetch(batch_rows, timeout=HISTORY_FETCH_TIMEOUT_S)
            if not rows:
                return
            yield [row[0] for row in rows]
