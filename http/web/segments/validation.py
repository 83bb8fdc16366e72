"""Checking segments requests: every rejection is an InvalidInput naming the field.

Bodies are strict JSON objects without unknown fields (decoded into the Structs below,
so msgspec names the field of a missing, unknown or out-of-range value). A slug matches
SLUG; a user id is a positive signed 64-bit integer written in decimal digits; a period
is YYYY-MM.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

import msgspec

from actors.segments.store import AddItem
from web.common.validation import InvalidInput, decode_json

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_ITEMS",
    "MAX_TTL_S",
    "PERIOD_PATTERN",
    "ChangeBody",
    "Period",
    "SegmentBody",
    "SegmentRequest",
    "UserChange",
    "parse_change",
    "parse_period",
    "parse_segment",
    "parse_slug",
    "parse_user_id",
]

MAX_BODY_BYTES = 64 * 1024
"""Bytes of a POST body (413 beyond): a change of MAX_ITEMS slugs of 100 bytes, with
expiries, fits with room."""
MAX_ITEMS = 100  # segments per list in one change: a change is one user's, in one transaction
MAX_TTL_S = 10 * 365 * 24 * 3600  # ten years; beyond that, leave expires_at out
INT64_MAX = 2**63 - 1
SLUG = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
SLUG_TEXT = "1 to 100 characters of A-Z a-z 0-9 _ . -"
_USER_ID = re.compile(r"^[0-9]{1,19}$")
PERIOD_PATTERN = (
    r"^(19[7-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
    r"-(0[1-9]|1[0-2])$"
)  # 1970-01 to 9998-12: the next month must exist
_PERIOD = re.compile(PERIOD_PATTERN)
_RFC3339 = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)


class SegmentRequest(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/segments; values are checked by parse_segment."""

    slug: Any
    percent: Any = None


class AddItemBody(msgspec.Struct, forbid_unknown_fields=True):
    """An ``add`` item given as an object; values are checked by _add_item."""

    slug: Any
    expires_at: Any = None
    ttl_seconds: Any = None


class ChangeBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/users/{user_id}/segments; items are checked by parse_change."""

    add: list[str | AddItemBody] | None = None
    remove: list[Any] | None = None


_SEGMENT = msgspec.json.Decoder(SegmentRequest)
_CHANGE = msgspec.json.Decoder(ChangeBody)


class SegmentBody(NamedTuple):
    slug: str
    percent: Decimal | None


class UserChange(NamedTuple):
    add: list[AddItem]
    remove: list[str]


class Period(NamedTuple):
    text: str  # YYYY-MM
    start: datetime  # first instant of the month, UTC
    end: datetime  # first instant of the next month


def parse_slug(value: Any, field: str = "slug") -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field}: expected a string")
    if not SLUG.fullmatch(value):
        raise InvalidInput(f"{field}: must be {SLUG_TEXT}")
    return value


def parse_percent(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("percent: expected a number from 0 to 100")
    try:
        percent = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise InvalidInput("percent: expected a number from 0 to 100") from None
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise InvalidInput("percent: expected a number from 0 to 100")
    return percent


def parse_segment(body: bytes) -> SegmentBody:
    """POST /api/segments: {"slug": "...", "percent": 30} (percent optional)."""
    data = decode_json(body, _SEGMENT)
    return SegmentBody(parse_slug(data.slug), parse_percent(data.percent))


def _items(value: list[Any] | None, field: str) -> list[Any]:
    if value is None:
        return []
    if len(value) > MAX_ITEMS:
        raise InvalidInput(f"{field}: at most {MAX_ITEMS} items")
    return value


def _timestamp(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise InvalidInput(
            f"{field}: expected an RFC 3339 timestamp with offset, e.g. 2030-01-31T12:00:00Z"
        )
    text = value.upper().replace(" ", "T")
    date_time, dot, rest = text.partition(".")
    if dot:  # at most microseconds
        fraction = re.match(r"[0-9]+", rest)
        digits = fraction.group(0) if fraction else ""
        text = f"{date_time}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{field}: not a valid date and time") from None


def _add_item(value: str | AddItemBody, field: str) -> AddItem:
    if isinstance(value, str):
        return AddItem(parse_slug(value, field))
    slug = parse_slug(value.slug, f"{field}.slug")
    expires, ttl = value.expires_at, value.ttl_seconds
    if expires is not None and ttl is not None:
        raise InvalidInput(f"{field}: give expires_at or ttl_seconds, not both")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= MAX_TTL_S:
            raise InvalidInput(f"{field}.ttl_seconds: expected an integer from 1 to {MAX_TTL_S}")
        return AddItem(slug, ttl_seconds=ttl)
    if expires is not None:
        return AddItem(slug, expires_at=_timestamp(expires, f"{field}.expires_at"))
    return AddItem(slug)


def parse_change(body: bytes) -> UserChange:
    """POST /api/users/{user_id}/segments: {"add": [...], "remove": [...]} (both optional)."""
    data = decode_json(body, _CHANGE)
    add = [_add_item(v, f"add[{i}]") for i, v in enumerate(_items(data.add, "add"))]
    remove = [parse_slug(v, f"remove[{i}]") for i, v in enumerate(_items(data.remove, "remove"))]
    seen: set[str] = set()
    for i, item in enumerate(add):
        if item.slug in seen:
            raise InvalidInput(f"add[{i}]: {item.slug} is listed twice")
        seen.add(item.slug)
    both = sorted(seen.intersection(remove))
    if both:
        raise InvalidInput(f"remove: {', '.join(both)} also in add")
    return UserChange(add, sorted(set(remove)))


def parse_user_id(value: Any, field: str = "user_id") -> int:
    """A positive signed 64-bit integer in decimal digits (path or query string)."""
    if (
        not isinstance(value, str)
        or not _USER_ID.fullmatch(value)
        or not 0 < int(value) <= INT64_MAX
    ):
        raise InvalidInput(f"{field}: expected a positive 64-bit integer (1 to {INT64_MAX})")
    return int(value)


def parse_period(value: Any) -> Period:
    """YYYY-MM, a month in UTC."""
    match = _PERIOD.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise InvalidInput("period: expected YYYY-MM, a month from 1970-01 to 9998-12")
    year, month = int(match[1]), int(match[2])
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return Period(value, start, end)
