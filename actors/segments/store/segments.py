"""The HTTP side's segments: create one (with its percent rollout), delete one, list them.

A percent segment's creation takes the rollout lock exclusively, a user's first
transaction shares it (``users.py``): either the creation's bulk INSERT ... SELECT sees the
user, or the user's first transaction sees the segment. Never neither, never both.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

import asyncpg

from actors.segments.store.base import (
    BULK_TIMEOUT_S,
    ROLLOUT_LOCK_KEY,
    SegmentExists,
    UnknownSegments,
)

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = ["Created", "SegmentInfo", "create_segment", "delete_segment", "list_segments"]


class Created(NamedTuple):
    slug: str
    percent: Decimal | None
    users_assigned: int


class SegmentInfo(NamedTuple):
    slug: str
    percent: Decimal | None
    users: int


async def create_segment(pool: LazyPool, slug: str, percent: Decimal | None) -> Created:
    """Create a segment; with a percent, assign it to the known users it selects.

    Raises:
        SegmentExists: a live segment has this slug.
    """
    async with pool.acquire() as conn, conn.transaction():
        if percent is not None:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", ROLLOUT_LOCK_KEY)
        try:
            segment_id = await conn.fetchval(
                "INSERT INTO segments.segments (slug, percent) VALUES ($1, $2) RETURNING id",
                slug,
                percent,
            )
        except asyncpg.UniqueViolationError:
            raise SegmentExists(slug) from None
        assigned = 0
        if percent is not None and percent > 0:
            assigned = await conn.fetchval(
                """
                WITH t AS (SELECT clock_timestamp() AS at),
                ins AS (
                    INSERT INTO segments.memberships (user_id, segment_id)
                    SELECT u.id, $1 FROM segments.users u
                    WHERE segments.bucket($2, u.id) < $3::numeric * 100
                    RETURNING user_id),
                hist AS (
                    INSERT INTO segments.history (user_id, slug, operation, at)
                    SELECT ins.user_id, $2, 'add', t.at FROM ins, t)
                SELECT count(*) FROM ins""",
                segment_id,
                slug,
                percent,
                timeout=BULK_TIMEOUT_S,
            )
    return Created(slug, percent, assigned)


async def delete_segment(pool: LazyPool, slug: str) -> int:
    """Delete a live segment; every member leaves it now (history 'remove' rows).

    Returns:
        How many users left it.

    Raises:
        UnknownSegments: no live segment has this slug.
    """
    async with pool.acquire() as conn, conn.transaction():
        segment_id = await conn.fetchval(
            "UPDATE segments.segments SET deleted_at = clock_timestamp() "
            "WHERE slug = $1 AND deleted_at IS NULL RETURNING id",
            slug,
        )
        if segment_id is None:
            raise UnknownSegments([slug])
        # NOTE: a membership that expired but was not reaped yet left at its expiry.
        left: int = await conn.fetchval(
            """
            WITH t AS (SELECT clock_timestamp() AS at),
            gone AS (
                DELETE FROM segments.memberships WHERE segment_id = $1
                RETURNING user_id, expires_at),
            hist AS (
                INSERT INTO segments.history (user_id, slug, operation, at)
                SELECT gone.user_id, $2, 'remove', least(coalesce(gone.expires_at, t.at), t.at)
                FROM gone, t)
            SELECT count(*) FROM gone""",
            segment_id,
            slug,
            timeout=BULK_TIMEOUT_S,
        )
        return left


async def list_segments(pool: LazyPool) -> list[SegmentInfo]:
    """Live segments by slug, each with its count of active members."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            """
            SELECT s.slug, s.percent, count(m.user_id) AS users
            FROM segments.segments s LEFT JOIN segments.memberships m
              ON m.segment_id = s.id AND (m.expires_at IS NULL OR m.expires_at > now())
            WHERE s.deleted_at IS NULL
            GROUP BY s.id ORDER BY s.slug COLLATE "C" """,
            timeout=BULK_TIMEOUT_S,
        )
    return [SegmentInfo(*row) for row in rows]
