"""What every part of segments' store shares: the schema, the errors, the locks, readiness.

Tables (schema/001_init.sql, schema `segments`): `segments.segments` (soft-deleted, a live
slug is unique), `segments.users` (known users), `segments.memberships` (user, segment,
optional expiry) and `segments.history` (add/remove rows, stamped with the time the change
took effect).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from actors.segments.changes import SegmentsError

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = [
    "BULK_TIMEOUT_S",
    "ROLLOUT_LOCK_KEY",
    "SCHEMA_DIR",
    "SegmentExists",
    "UnknownSegments",
    "ping",
]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schema"
BULK_TIMEOUT_S = 600.0  # creating or deleting a segment of millions of members
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


async def ping(pool: LazyPool) -> None:
    """One round trip; raises when the database does not answer."""
    async with pool.acquire() as conn:
        await conn.fetchval("SELECT 1")
