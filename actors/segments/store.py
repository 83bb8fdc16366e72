"""Every SQL statement of segments: named async functions, typed results, typed errors.

Tables (schema/001_init.sql, schema `segments`): `segments.segments` (soft-deleted, a live
slug is unique), `segments.users` (known users), `segments.memberships` (user, segment,
optional expiry) and `segments.history` (add/remove rows, stamped with the time the change
took effect).

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

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import asyncpg

from actors.segments.changes import AddItem, ExpiryInPast, SegmentsError, plan

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = [
    "SCHEMA_DIR",
    "AddItem",
    "Created",
    "ExpiryInPast",
    "SegmentExists",
    "SegmentInfo",
    "SegmentsError",
    "UnknownSegments",
    "change_user_segments",
    "create_segment",
    "delete_segment",
    "history_lines",
    "list_segments",
    "ping",
    "reap_expired",
    "seconds_to_next_expiry",
    "user_segments",
]

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
BULK_TIMEOUT_S = 600.0  # creating or deleting a segment of millions of members
HISTORY_PREFETCH_ROWS = 1000  # rows per round trip of the history cursor
HISTORY_FETCH_TIMEOUT_S = 60.0
REAP_BATCH_ROWS = 10_000  # expired memberships moved to history per transaction
# Shared by a user's first transaction, exclusive while a percent segment is created.
ROLLOUT_LOCK_KEY = 0x5E6_0001


class SegmentExists(SegmentsError):
    """A live segment has this slug."""

    def __init__(self, slug: str):
        super().__init__(f"segment {slug} exists")
        self.slug = slug


class UnknownSegments(SegmentsError):
    """No live segment has these slugs (sorted)."""

    def __init__(self, slugs: Iterable[str]) -> None:
        self.slugs = sorted(slugs)
        noun = "segment" if len(self.slugs) == 1 else "segments"
        super().__init__(f"unknown {noun}: {', '.join(self.slugs)}")


class Created(NamedTuple):
    slug: str
    percent: Decimal | None
    users_assigned: int


class SegmentInfo(NamedTuple):
    slug: str
    percent: Decimal | None
    users: int


_ACTIVE_SLUGS = """
SELECT coalesce(array_agg(s.slug ORDER BY s.slug COLLATE "C"), '{}')
FROM segments.memberships m JOIN segments.segments s ON s.id = m.segment_id
WHERE m.user_id = $1 AND (m.expires_at IS NULL OR m.expires_at > coalesce($2, now()))"""


async def ping(pool: LazyPool) -> None:
    """One round trip; raises when the database does not answer."""
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")


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
    """Add and remove segments of one user, all or nothing.

    Adding a held segment keeps it and replaces its expiry (no history row); removing one
    not held does nothing. A held membership already expired counts as not held: its
    removal is recorded at its expiry time first.

    Returns:
        The user's active slugs after the change, sorted.

    Raises:
        UnknownSegments: a slug names no live segment (nothing changed).
        ExpiryInPast: an absolute expiry is not after the time of the change.
    """
    slugs = sorted({item.slug for item in add} | set(remove))
    async with pool.acquire() as conn, conn.transaction():
        await _lock_user(conn, user_id)
        ids: dict[str, int] = {}
        if slugs:
            ids = {
                slug: segment_id
                for slug, segment_id in await conn.fetch(
                    "SELECT slug, id FROM segments.segments "
                    "WHERE slug = ANY($1::text[]) AND deleted_at IS NULL FOR SHARE",
                    slugs,
                )
            }
            if len(ids) < len(slugs):
                raise UnknownSegments(set(slugs) - ids.keys())
        held = {
            row[0]: (row[1], row[2]) for row in await conn.fetch(_HELD, user_id, list(ids.values()))
        }
        now = await conn.fetchval("SELECT clock_timestamp()")
        change = plan(now, ids, held, add, remove)
        if change.delete or change.upsert:
            history = list(zip(*change.history, strict=True)) or [(), (), ()]
            await conn.execute(
                _WRITE_CHANGE,
                user_id,
                change.delete,
                [sid for sid, _ in change.upsert],
                [expires for _, expires in change.upsert],
                *map(list, history),
            )
        return change.active


# Every membership of the user; those of the named segments locked (the reaper skips them,
# a deletion of those segments waits on our FOR SHARE). The answer is computed from these
# rows, without reading again.
# NOTE: the others are read, not locked: a deletion of another segment then never waits
# for this change (nor the reverse), and the lock graph has no edge to form a cycle with.
_HELD = """
WITH locked AS (
    SELECT segment_id, expires_at FROM segments.memberships
    WHERE user_id = $1 AND segment_id = ANY($2::bigint[]) FOR UPDATE)
SELECT l.segment_id, s.slug, l.expires_at
FROM locked l JOIN segments.segments s ON s.id = l.segment_id
UNION ALL
SELECT m.segment_id, s.slug, m.expires_at
FROM segments.memberships m JOIN segments.segments s ON s.id = m.segment_id
WHERE m.user_id = $1 AND m.segment_id <> ALL($2::bigint[])"""


_WRITE_CHANGE = """
WITH gone AS (
    DELETE FROM segments.memberships WHERE user_id = $1 AND segment_id = ANY($2::bigint[])),
kept AS (
    INSERT INTO segments.memberships (user_id, segment_id, expires_at)
    SELECT $1, segment_id, expires_at
    FROM unnest($3::bigint[], $4::timestamptz[]) AS t(segment_id, expires_at)
    ON CONFLICT (user_id, segment_id) DO UPDATE SET expires_at = EXCLUDED.expires_at)
INSERT INTO segments.history (user_id, slug, operation, at)
SELECT $1, slug, operation, at
FROM unnest($5::text[], $6::text[], $7::timestamptz[]) AS t(slug, operation, at)"""


async def _lock_user(conn: asyncpg.Connection, user_id: int) -> datetime | None:
    """Lock the user's row; a new user is made known first, with the percent segments that
    select them.

    Returns:
        The time the user became known when this transaction made them known, else None.
    """
    if await conn.fetchval("SELECT true FROM segments.users WHERE id = $1 FOR UPDATE", user_id):
        return None
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", ROLLOUT_LOCK_KEY)
    now: datetime | None = await conn.fetchval(
        "INSERT INTO segments.users (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING first_seen",
        user_id,
    )
    if now is None:  # another transaction made the user known first: wait for it
        await conn.execute("SELECT 1 FROM segments.users WHERE id = $1 FOR UPDATE", user_id)
        return None
    await conn.execute(
        """
        WITH picked AS (
            SELECT id, slug FROM segments.segments
            WHERE deleted_at IS NULL AND percent > 0 AND segments.bucket(slug, $1) < percent * 100
            FOR SHARE),
        ins AS (
            INSERT INTO segments.memberships (user_id, segment_id) SELECT $1, id FROM picked)
        INSERT INTO segments.history (user_id, slug, operation, at)
        SELECT $1, slug, 'add', $2 FROM picked""",
        user_id,
        now,
    )
    return now


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
