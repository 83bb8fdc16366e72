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

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

import asyncpg

from actors.runtime.pg.transaction import begun
from actors.segments.changes import AddItem, plan
from actors.segments.store.base import ROLLOUT_LOCK_KEY, UnknownSegments

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = ["change_user_segments", "user_segments"]

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
    # NOTE: BEGIN carries the user's row lock (no parameters there: the id is an int,
    # formatted as one), one round trip for both.
    lock_user = f"SELECT FROM segments.users WHERE id = {user_id:d} FOR UPDATE"
    async with pool.acquire() as conn, begun(conn, lock_user):
        state = await _State.read(conn, user_id, slugs)
        if not state.known:  # the first time: made known (locked) first, then read again
            await _lock_user(conn, user_id)
            state = await _State.read(conn, user_id, slugs)
        if len(state.ids) < len(slugs):
            raise UnknownSegments(set(slugs) - state.ids.keys())
        assert state.now is not None  # the statement's last part is the clock
        change = plan(state.now, state.ids, state.held, add, remove)
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


class _State:
    """What a change is planned from, read in one statement under the user's row lock."""

    __slots__ = ("held", "ids", "known", "now")

    def __init__(self) -> None:
        self.known = False
        self.ids: dict[str, int] = {}  # slug -> id of each named live segment
        self.held: dict[int, tuple[str, datetime | None]] = {}  # every membership
        self.now: datetime | None = None

    @classmethod
    async def read(cls, conn: asyncpg.Connection, user_id: int, slugs: list[str]) -> _State:
        state = cls()
        for kind, segment_id, slug, at in await conn.fetch(_STATE, user_id, slugs):
            if kind == "named":
                state.ids[slug] = segment_id
            elif kind == "held":
                state.held[segment_id] = (slug, at)
            elif kind == "now":
                state.now = at
            else:
                state.known = True
        return state


# One statement, its parts run in order (an Append runs its branches one after another):
# the named live segments locked FOR SHARE (a deletion of one waits for this change, a
# change after the deletion sees no such segment); the user's memberships of them locked
# FOR UPDATE (the reaper skips those); the user's other memberships, read, not locked (a
# deletion of another segment never waits for this change, nor the reverse, so the lock
# graph has no edge to form a cycle with); then the clock, read after every lock is held,
# so history timestamps follow the serial order. The answer is computed from these rows
# without reading again. Every part but "known" is gated on the user being known, so for
# a new user this locks nothing: it is made known first (_lock_user), then read again.
_STATE = """
WITH known AS (SELECT EXISTS (SELECT 1 FROM segments.users WHERE id = $1) AS yes),
named AS MATERIALIZED (
    SELECT id, slug FROM segments.segments
    WHERE slug = ANY($2::text[]) AND deleted_at IS NULL AND (SELECT yes FROM known)
    FOR SHARE),
locked AS MATERIALIZED (
    SELECT segment_id, expires_at FROM segments.memberships
    WHERE user_id = $1 AND segment_id = ANY(ARRAY(SELECT id FROM named)) FOR UPDATE)
SELECT 'known' AS kind, NULL::bigint AS id, NULL::text AS slug, NULL::timestamptz AS at
FROM known WHERE yes
UNION ALL
SELECT 'named', id, slug, NULL FROM named
UNION ALL
SELECT 'held', l.segment_id, s.slug, l.expires_at
FROM locked l JOIN segments.segments s ON s.id = l.segment_id
UNION ALL
SELECT 'held', m.segment_id, s.slug, m.expires_at
FROM segments.memberships m JOIN segments.segments s ON s.id = m.segment_id
WHERE m.user_id = $1 AND m.segment_id <> ALL(ARRAY(SELECT id FROM named))
  AND (SELECT yes FROM known)
UNION ALL
SELECT 'now', NULL, NULL, clock_timestamp()"""


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
