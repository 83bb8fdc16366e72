"""The HTTP side's users: a user's active segments, and a change of them.

Concurrency, settled by the database:
- Changes of one user serialize on the user's row (`FOR UPDATE`), so they apply in some
  serial order and the history of each (user, segment) alternates add/remove.
- A change holds the rows of the segments it names `FOR SHARE`; deleting a segment
  updates that row, so it waits for those changes, and a change after it sees no such
  segment (404).
- A user seen for the first time takes a shared advisory lock, creating a percent segment
  the exclusive one: either the creation's bulk INSERT ... SELECT sees the user, or the
  user's first transaction sees the segment. Never neither, never both.
- Each transaction reads `clock_timestamp()` after it holds its locks and stamps its
  history rows with it, so timestamps follow the serial order. A removal by TTL is stamped
  with its expiry time; the reaper and the changes lock membership rows, so exactly one
  of them writes it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from actors.segments.changes import AddItem, ExpiryInPast
from actors.segments.store.base import ROLLOUT_LOCK_KEY, UnknownSegments

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = ["change_user_segments", "user_segments"]

UNKNOWN_SEGMENTS_STATE = "SG001"
"""segments.change_user's SQLSTATE for slugs naming no live segment (DETAIL: JSON array)."""
EXPIRY_IN_PAST_STATE = "SG002"
"""segments.change_user's SQLSTATE for an absolute expiry not after the change (DETAIL: slug)."""

_ACTIVE_SLUGS = """
SELECT coalesce(array_agg(s.slug ORDER BY s.slug COLLATE "C"), '{}')
FROM segments.memberships m JOIN segments.segments s ON s.id = m.segment_id
WHERE m.user_id = $1 AND (m.expires_at IS NULL OR m.expires_at > coalesce($2, now()))"""


async def user_segments(pool: LazyPool, user_id: int) -> list[str]:
    """The user's active slugs, sorted; a user seen for the first time becomes known."""
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            f"SELECT EXISTS (SELECT 1 FROM segments.users WHERE id = $1), ({_ACTIVE_SLUGS})",
            user_id,
            None,
        )
        assert row is not None  # a SELECT without FROM has its one row
        known, slugs = row
        if known:
            return list(slugs)
        async with conn.transaction():
            now = await _lock_user(conn, user_id)
            return list(await conn.fetchval(_ACTIVE_SLUGS, user_id, now))


async def change_user_segments(
    pool: LazyPool, user_id: int, add: Sequence[AddItem], remove: Sequence[str]
) -> list[str]:
    """Add and remove segments of one user, all or nothing, in one call of
    segments.change_user (schema/002_change_in_one_call.sql): one round trip.

    Adding a held segment keeps it and replaces its expiry (no history row); removing one
    not held does nothing. A held membership already expired counts as not held: its
    removal is recorded at its expiry time first.

    Returns:
        The user's active slugs after the change, sorted.

    Raises:
        UnknownSegments: a slug names no live segment (nothing changed).
        ExpiryInPast: an absolute expiry is not after the time of the change.
    """
    async with pool.acquire() as conn:
        try:
            active: list[str] = await conn.fetchval(
                "SELECT segments.change_user($1, $2, $3, $4, $5, $6)",
                user_id,
                [item.slug for item in add],
                [item.expires_at for item in add],
                [item.ttl_seconds for item in add],
                list(remove),
                ROLLOUT_LOCK_KEY,
            )
        except asyncpg.PostgresError as exc:
            raise _change_error(exc, add) from None
    return list(active)


def _change_error(exc: asyncpg.PostgresError, add: Sequence[AddItem]) -> Exception:
    """The store's error for segments.change_user's own SQLSTATEs; any other as it came."""
    code = getattr(exc, "sqlstate", None)
    detail = getattr(exc, "detail", None) or ""
    if code == UNKNOWN_SEGMENTS_STATE:
        return UnknownSegments(json.loads(detail))
    if code == EXPIRY_IN_PAST_STATE:
        item = next(item for item in add if item.slug == detail)
        assert item.expires_at is not None  # only an absolute expiry can be in the past
        return ExpiryInPast(item.slug, item.expires_at)
    return exc


async def _lock_user(conn: asyncpg.Connection, user_id: int) -> datetime | None:
    """Lock the user's row; a new user is made known first, with the percent segments that
    select them (segments.make_known, schema/002_change_in_one_call.sql).

    Returns:
        The time the user became known when this transaction made them known, else None.
    """
    seen: datetime | None = await conn.fetchval(
        "SELECT segments.make_known($1, $2)", user_id, ROLLOUT_LOCK_KEY
    )
    return seen
