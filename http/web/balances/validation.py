"""Request parsing for balances: bodies, path ids, paging, Idempotency-Key.

Every failure is an InvalidInput (400) naming the field, so a rejected request
changes nothing and queues nothing; bodies are decoded into the Structs below, which
refuse unknown fields (web.common reads them: 413 over MAX_BODY_BYTES, 415 for a
non-JSON Content-Type).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

import falcon
import falcon.asgi
import msgspec

from actors.balances.store import MAX_MONEY
from web.common.validation import InvalidInput, decode_json

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_BODY_BYTES",
    "MAX_LIMIT",
    "MAX_USERNAME_BYTES",
    "NewTask",
    "NewUser",
    "idempotency_key",
    "page",
    "parse_new_task",
    "parse_new_user",
    "path_id",
]

MAX_BODY_BYTES = 16 * 1024
"""Bytes of a POST body (413 beyond): a user or a task is a few dozen bytes."""
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


class NewUser(msgspec.Struct, forbid_unknown_fields=True):
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


class NewTask(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/v1/user/{id}/amount/ body."""

    type: Literal["replenishment", "write-off"]
    """replenishment adds amount; write-off subtracts it, or is cancelled."""
    amount: Annotated[int, msgspec.Meta(ge=1, le=MAX_MONEY)]
    """Minor units, > 0."""


_NEW_USER = msgspec.json.Decoder(NewUser)
_NEW_TASK = msgspec.json.Decoder(NewTask)


def parse_new_user(body: bytes) -> NewUser:
    """POST /api/v1/user/: {"username": ..., "balance": ...}."""
    user = decode_json(body, _NEW_USER)
    if len(user.username.encode("utf-8", "surrogatepass")) > MAX_USERNAME_BYTES:
        raise InvalidInput(f"username: longer than {MAX_USERNAME_BYTES} bytes")
    if "\x00" in user.username:
        raise InvalidInput("username: must not contain NUL")
    return user


def parse_new_task(body: bytes) -> NewTask:
    """POST /api/v1/user/{id}/amount/: {"type": ..., "amount": ...}."""
    return decode_json(body, _NEW_TASK)


def path_id(value: str, name: str) -> int:
    """An id from the path: 400 unless digits; 404 for 0 or beyond bigint (no such row)."""
    if not _DIGITS.fullmatch(value):
        raise InvalidInput(f"{name}: {value[:40]!r} is not a positive integer id")
    number = int(value)
    if not 0 < number <= MAX_MONEY:
        raise falcon.HTTPNotFound(description=f"{name}: no {_NOUNS[name]} {number}")
    return number


def _int_param(req: falcon.asgi.Request, name: str, default: int, low: int, high: int) -> int:
    raw = req.get_param(name, default=None)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidInput(f"{name}: {raw[:40]!r} is not an integer in {low}..{high}")
    return int(raw)


def page(req: falcon.asgi.Request) -> tuple[int, int]:
    """(after, limit) query parameters of a list."""
    after = _int_param(req, "after", 0, 0, MAX_MONEY)
    limit = _int_param(req, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    return after, limit


def idempotency_key(req: falcon.asgi.Request) -> str | None:
    """The Idempotency-Key header, if any."""
    key = req.get_header("Idempotency-Key")
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise InvalidInput(f"Idempotency-Key: 1..{MAX_KEY_CHARS} printable ASCII characters")
    return key
