"""Request parsing for balances: bodies, path ids, paging, Idempotency-Key.

Every failure is a falcon error whose description names the field, so a rejected
request answers 400 (413 for a body over MAX_BODY_BYTES) before anything is queued.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import falcon
import msgspec

from actors.balances.store import MAX_MONEY

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "MAX_USERNAME_BYTES",
    "NewTask",
    "NewUser",
    "idempotency_key",
    "page",
    "path_id",
    "read_body",
]

MAX_BODY_BYTES = 16 * 1024
"""A user or a task is a few dozen bytes; anything over this is 413."""
MAX_USERNAME_BYTES = 128
MAX_KEY_CHARS = 255
"""Idempotency-Key: 1..255 printable ASCII characters."""
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
"""Page sizes of the user and task lists (`limit`)."""

_KEY = re.compile(rf"^[\x20-\x7e]{{1,{MAX_KEY_CHARS}}}$")
_DIGITS = re.compile(r"^[0-9]{1,19}$")
_NOUNS = {"id": "user", "task_id": "task"}

Money = Annotated[int, msgspec.Meta(ge=0, le=MAX_MONEY)]


class NewUser(msgspec.Struct):
    """POST /api/v1/user/ body."""

    username: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_USERNAME_BYTES,
            pattern="^[^\x00]*$",
            description="Non-empty, at most 128 UTF-8 bytes, no NUL; unique.",
        ),
    ]
    """Non-empty, at most 128 UTF-8 bytes (the schema can only say characters), unique."""
    balance: Money
    """Opening balance in minor units, >= 0."""


class NewTask(msgspec.Struct):
    """POST /api/v1/user/{id}/amount/ body."""

    type: Literal["replenishment", "write-off"]
    """replenishment adds amount; write-off subtracts it, or is cancelled."""
    amount: Annotated[int, msgspec.Meta(ge=1, le=MAX_MONEY)]
    """Minor units, > 0."""


async def read_body(req, shape: type[msgspec.Struct]) -> msgspec.Struct:
    """The body decoded into `shape`.

    Raises:
        falcon.HTTPContentTooLarge: over MAX_BODY_BYTES.
        falcon.HTTPBadRequest: not JSON, or a field missing or of the wrong type/range.
    """
    if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(
            description=f"body: over the limit of {MAX_BODY_BYTES} bytes"
        )
    data = await req.stream.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise falcon.HTTPContentTooLarge(
            description=f"body: over the limit of {MAX_BODY_BYTES} bytes"
        )
    if not data.strip():
        raise falcon.HTTPBadRequest(description="body: expected a JSON object, got nothing")
    try:
        value = msgspec.json.decode(data, type=shape)
    except msgspec.ValidationError as exc:
        raise falcon.HTTPBadRequest(description=str(exc)) from None
    except msgspec.DecodeError as exc:
        raise falcon.HTTPBadRequest(description=f"body: malformed JSON: {exc}") from None
    if isinstance(value, NewUser):
        _check_username(value.username)
    return value


def _check_username(username: str) -> None:
    try:
        size = len(username.encode("utf-8"))
    except UnicodeEncodeError:
        raise falcon.HTTPBadRequest(description="username: not valid UTF-8") from None
    if size > MAX_USERNAME_BYTES:
        raise falcon.HTTPBadRequest(description=f"username: longer than {MAX_USERNAME_BYTES} bytes")
    if "\x00" in username:
        raise falcon.HTTPBadRequest(description="username: must not contain NUL")


def path_id(value: str, name: str) -> int:
    """An id from the path: 400 unless digits; 404 for 0 or beyond bigint (no such row)."""
    if not _DIGITS.fullmatch(value):
        raise falcon.HTTPBadRequest(
            description=f"{name}: {value[:40]!r} is not a positive integer id"
        )
    number = int(value)
    if not 0 < number <= MAX_MONEY:
        raise falcon.HTTPNotFound(description=f"{name}: no {_NOUNS[name]} {number}")
    return number


def _int_param(req, name: str, default: int, low: int, high: int) -> int:
    raw = req.get_param(name, default=None)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise falcon.HTTPBadRequest(
            description=f"{name}: {raw[:40]!r} is not an integer in {low}..{high}"
        )
    return int(raw)


def page(req) -> tuple[int, int]:
    """(after, limit) query parameters of a list."""
    after = _int_param(req, "after", 0, 0, MAX_MONEY)
    limit = _int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return after, limit


def idempotency_key(req) -> str | None:
    """The Idempotency-Key header, if any."""
    key = req.get_header("Idempotency-Key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise falcon.HTTPBadRequest(
            description=f"Idempotency-Key: 1..{MAX_KEY_CHARS} printable ASCII characters"
        )
    return key
