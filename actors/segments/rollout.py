"""The stable hash behind percent segments, the same number SQL computes.

A user belongs to a segment created with `percent` p when `bucket(slug, user_id)` is
below p * 100 (exact decimal arithmetic, in SQL too). The schema's
`segments.bucket(slug, user_id)` computes the bucket in PostgreSQL (bulk assignment at
creation, assignment of a user seen for the first time); this module computes it in
Python for tests and tools. The bucket depends on nothing but the slug and the user id,
so every instance, every restart and a segment deleted and created again with the same
percent give the same answer.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal

__all__ = ["BUCKETS", "bucket", "selected"]

BUCKETS = 10_000  # one bucket is 0.01 % of users
HASH_HEX_DIGITS = 15  # 60 bits of md5: a positive bigint in PostgreSQL


def bucket(slug: str, user_id: int) -> int:
    """The user's bucket in 0..BUCKETS-1 for this slug."""
    digest = hashlib.md5(f"{slug}:{user_id}".encode()).hexdigest()
    return int(digest[:HASH_HEX_DIGITS], 16) % BUCKETS


def selected(slug: str, user_id: int, percent: Decimal | float) -> bool:
    """True when a segment of this slug and percent holds the user by rollout."""
    return bucket(slug, user_id) < Decimal(str(percent)) * 100
