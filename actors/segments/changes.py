"""A change of one user's segments as the store takes it (AddItem) and its errors.

What a change does is worked out in the database, in one call of segments.change_user
(schema/002_change_in_one_call.sql), under the user's row lock: one round trip.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

__all__ = ["AddItem", "ExpiryInPast", "SegmentsError"]


class SegmentsError(Exception):
    """Base of the store's errors."""


class ExpiryInPast(SegmentsError):
    """An `expires_at` is not after the time of the change."""

    def __init__(self, slug: str, expires_at: datetime):
        super().__init__(f"expires_at of {slug} ({expires_at.isoformat()}) is not in the future")
        self.slug = slug


class AddItem(NamedTuple):
    """One segment to add to a user."""

    slug: str
    """The segment."""
    expires_at: datetime | None = None
    """Absolute expiry (aware), or None."""
    ttl_seconds: int | None = None
    """Expiry relative to the time of the change, or None."""
