"""What a change of one user's segments does, worked out from the user's locked rows.

Pure Python, no SQL: `store.change_user_segments` reads the memberships, asks `plan()`
and writes the result in one statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

__all__ = ["AddItem", "Change", "ExpiryInPast", "SegmentsError", "plan"]


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


class Change(NamedTuple):
    delete: list[int]
    """Segment ids whose membership ends."""
    upsert: list[tuple[int, datetime | None]]
    """(segment id, expiry): memberships added, or kept with a new expiry."""
    history: list[tuple[str, str, datetime]]
    """(slug, 'add' or 'remove', at), in the order to write them."""
    active: list[str]
    """The user's active slugs afterwards, sorted."""


def plan(
    now: datetime,
    ids: dict[str, int],
    held: dict[int, tuple[str, datetime | None]],
    add: Sequence[AddItem],
    remove: Sequence[str],
) -> Change:
    """What the change does.

    Args:
        now: the time of the change (taken after the locks are held).
        ids: slug -> segment id of every slug named in add or remove.
        held: segment id -> (slug, expiry) of every membership of the user, expired too.
        add, remove: the request; a slug is in add at most once and not in remove.

    Raises:
        ExpiryInPast: an absolute expiry is not after `now`.
    """
    live = {sid for sid, (_, expires) in held.items() if expires is None or expires > now}
    added = {ids[item.slug] for item in add}
    change = Change([], [], [], [])
    for sid, (slug, expires) in held.items():
        if sid not in live and ids.get(slug) == sid:  # expired and named: left at its expiry
            assert expires is not None  # not live: it has an expiry, and it passed
            change.history.append((slug, "remove", expires))
            if sid not in added:
                change.delete.append(sid)
    for slug in sorted(set(remove)):
        if ids[slug] in live:
            change.delete.append(ids[slug])
            change.history.append((slug, "remove", now))
    for item in add:
        sid = ids[item.slug]
        change.upsert.append((sid, _expiry(item, now)))
        if sid not in live:
            change.history.append((item.slug, "add", now))
    stay = {held[sid][0] for sid in live if sid not in change.delete}
    change.active.extend(sorted(stay | {item.slug for item in add}))
    return change


def _expiry(item: AddItem, now: datetime) -> datetime | None:
    if item.ttl_seconds is not None:
        return now + timedelta(seconds=item.ttl_seconds)
    if item.expires_at is not None and item.expires_at <= now:
        raise ExpiryInPast(item.slug, item.expires_at)
    return item.expires_at
