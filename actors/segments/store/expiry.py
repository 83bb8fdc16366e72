"""The reaper's side: when the next membership expires, and moving expired ones to history.

A removal by TTL is stamped with its expiry time; the reaper and the changes
(``users.py``) lock membership rows, so exactly one of them writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.segments.store.base import BULK_TIMEOUT_S

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = ["REAP_BATCH_ROWS", "reap_expired", "seconds_to_next_expiry"]

REAP_BATCH_ROWS = 10_000  # expired memberships moved to history per transaction


async def seconds_to_next_expiry(pool: LazyPool) -> float | None:
    """Seconds from now (the database's clock) to the earliest expiry; None when none.

    Negative when an expired membership waits for the reaper.
    """
    async with pool.acquire() as conn:
        seconds: float | None = await conn.fetchval(
            "SELECT extract(epoch FROM min(expires_at) - clock_timestamp())::float8 "
            "FROM segments.memberships WHERE expires_at IS NOT NULL"
        )
        return seconds


async def reap_expired(pool: LazyPool, limit: int = REAP_BATCH_ROWS) -> int:
    """Move up to `limit` expired memberships to history, stamped with their expiry.

    Rows another transaction holds are skipped (that one handles them, or the next round
    does), so reapers of several instances never write a removal twice.

    Returns:
        How many memberships were moved.
    """
    async with pool.acquire() as conn, conn.transaction():
        moved: int = await conn.fetchval(
            """
            WITH due AS (
                SELECT user_id, segment_id FROM segments.memberships
                WHERE expires_at <= now()
                ORDER BY expires_at LIMIT $1
                FOR UPDATE SKIP LOCKED),
            gone AS (
                DELETE FROM segments.memberships m USING due
                WHERE m.user_id = due.user_id AND m.segment_id = due.segment_id
                RETURNING m.user_id, m.segment_id, m.expires_at),
            hist AS (
                INSERT INTO segments.history (user_id, slug, operation, at)
                SELECT gone.user_id, s.slug, 'remove', gone.expires_at
                FROM gone JOIN segments.segments s ON s.id = gone.segment_id)
            SELECT count(*) FROM gone""",
            limit,
            timeout=BULK_TIMEOUT_S,
        )
        return moved
