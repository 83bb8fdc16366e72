"""Checking gophermart requests: every rejection is an error naming what is wrong.

A rejected request changes nothing. JSON bodies are objects without unknown fields,
numbers are decoded exactly (Decimal, never float). Statuses follow seed 003:
malformed input 400, a number failing Luhn 422, a body over its limit 413.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import falcon
import msgspec

from actors.shared.luhn import MAX_DIGITS, is_digits, luhn_valid
from actors.shared.money import DECODER, AmountError, parse_kopecks

__all__ = [
    "MAX_CREDENTIAL_BYTES",
    "MAX_JSON_BYTES",
    "MAX_ORDER_BYTES",
    "BadOrderNumber",
    "Credentials",
    "InvalidInput",
    "WithdrawRequest",
    "parse_credentials",
    "parse_order_body",
    "parse_withdraw",
    "read_body",
]

MAX_JSON_BYTES = 4096
"""A login and a password of 256 bytes each, JSON-escaped (x6), fit."""
MAX_ORDER_BYTES = 1024
"""An order number (64 digits at most) and generous surrounding whitespace."""
MAX_CREDENTIAL_BYTES = 256


class InvalidInput(ValueError):
    """400: the message names the field and says what is wrong."""


class BadOrderNumber(ValueError):
    """422: digits that fail the Luhn check (or too many of them)."""


class Credentials(NamedTuple):
    login: str
    password: str


class WithdrawRequest(NamedTuple):
    order: str
    sum_kop: int


async def read_body(req: falcon.asgi.Request, limit: int) -> bytes:
    """The whole body, refused with 413 past `limit` bytes (before reading it if the
    Content-Length says so)."""
    if req.content_length is not None and req.content_length > limit:
        raise falcon.HTTPContentTooLarge(description=f"body: longer than {limit} bytes")
    body = await req.stream.read(limit + 1)
    if len(body) > limit:
        raise falcon.HTTPContentTooLarge(description=f"body: longer than {limit} bytes")
    return body


def _object(body: bytes, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not body.strip():
        raise InvalidInput("body: empty; expected a JSON object")
    try:
        data = DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"body: malformed JSON or not UTF-8 ({exc})") from None
    if not isinstance(data, dict):
        raise InvalidInput("body: expected a JSON object")
    for key in data:
        if key not in allowed:
            raise InvalidInput(f"{key}: unknown field (allowed: {', '.join(allowed)})")
    for key in allowed:
        if key not in data:
            raise InvalidInput(f"{key}: missing")
    return data


def _text_field(data: dict, name: str, limit: int) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a string, got {_json_type(value)}")
    if not value:
        raise InvalidInput(f"{name}: empty")
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        raise InvalidInput(f"{name}: longer than {limit} bytes")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, dict)):
        return "an array" if isinstance(value, list) else "an object"
    return "a number"


def parse_credentials(body: bytes) -> Credentials:
    """{"login": non-empty string, "password": non-empty string}, each ≤ 256 bytes."""
    data = _object(body, ("login", "password"))
    login = _text_field(data, "login", MAX_CREDENTIAL_BYTES)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in login):
        raise InvalidInput("login: control characters are not allowed")
    password = _text_field(data, "password", MAX_CREDENTIAL_BYTES)
    return Credentials(login, password)


def parse_order_body(body: bytes) -> str:
    """The order number of a text/plain body (surrounding whitespace ignored).

    Raises:
        InvalidInput: empty, not ASCII digits (400).
        BadOrderNumber: too long or failing Luhn (422).
    """
    try:
        text = body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise InvalidInput("order number: expected ASCII digits") from None
    if not text:
        raise InvalidInput("order number: empty body; expected digits")
    if not text.isdigit():
        raise InvalidInput("order number: expected digits only")
    if not is_digits(text):
        raise BadOrderNumber(f"order number: longer than {MAX_DIGITS} digits")
    if not luhn_valid(text):
        raise BadOrderNumber("order number: fails the Luhn check")
    return text


def parse_withdraw(body: bytes) -> WithdrawRequest:
    """{"order": "<Luhn-valid digits>", "sum": positive number, at most two decimals}.

    Raises:
        InvalidInput: malformed body, wrong types, a bad sum (400).
        BadOrderNumber: the order number is not digits or fails Luhn (422).
    """
    data = _object(body, ("order", "sum"))
    order = data["order"]
    if not isinstance(order, str):
        raise InvalidInput(f"order: expected a string of digits, got {_json_type(order)}")
    try:
        sum_kop = parse_kopecks(data["sum"])
    except AmountError as exc:
        raise InvalidInput(f"sum: {exc}") from None
    if not luhn_valid(order):
        raise BadOrderNumber("order: not a valid order number (digits passing the Luhn check)")
    return WithdrawRequest(order, sum_kop)
