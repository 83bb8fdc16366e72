"""Checking gophermart requests: every rejection is an error naming what is wrong.

A rejected request changes nothing. JSON bodies are objects without unknown fields
(decoded into the Structs below, so msgspec names the field of a missing, unknown or
out-of-range value); numbers are decoded exactly (Decimal, never float). Statuses
follow seed 003: malformed input 400, a number failing Luhn 422, a body over its
limit 413.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from actors.shared.luhn import MAX_DIGITS, is_digits, luhn_valid
from actors.shared.money import AmountError, parse_kopecks
from web.common.validation import InvalidInput, check_text, decode_json, json_type

__all__ = [
    "MAX_CREDENTIAL_BYTES",
    "MAX_JSON_BYTES",
    "MAX_ORDER_BYTES",
    "BadOrderNumber",
    "Credentials",
    "CredentialsBody",
    "WithdrawBody",
    "WithdrawRequest",
    "parse_credentials",
    "parse_order_body",
    "parse_withdraw",
]

MAX_JSON_BYTES = 4096
"""Bytes of a JSON body (413 beyond): a login and a password of 256 bytes each,
JSON-escaped (x6), fit."""
MAX_ORDER_BYTES = 1024
"""Bytes of an order upload's text body (413 beyond): an order number (64 digits at
most) and generous surrounding whitespace."""
MAX_CREDENTIAL_BYTES = 256


class BadOrderNumber(ValueError):
    """422: digits that fail the Luhn check (or too many of them)."""


class CredentialsBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/user/register and /login; values are checked by parse_credentials."""

    login: Any
    password: Any


class WithdrawBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/user/balance/withdraw; values are checked by parse_withdraw."""

    order: Any
    sum: Any


_CREDENTIALS = msgspec.json.Decoder(CredentialsBody, float_hook=Decimal)
_WITHDRAW = msgspec.json.Decoder(WithdrawBody, float_hook=Decimal)


class Credentials(NamedTuple):
    login: str
    password: str


class WithdrawRequest(NamedTuple):
    order: str
    sum_kop: int


def parse_credentials(body: bytes) -> Credentials:
    """{"login": non-empty string, "password": non-empty string}, each ≤ 256 bytes."""
    data = decode_json(body, _CREDENTIALS)
    login = check_text(data.login, "login", MAX_CREDENTIAL_BYTES)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in login):
        raise InvalidInput("login: control characters are not allowed")
    password = check_text(data.password, "password", MAX_CREDENTIAL_BYTES)
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
    data = decode_json(body, _WITHDRAW)
    order = data.order
    if not isinstance(order, str):
        raise InvalidInput(f"order: expected a string of digits, got {json_type(order)}")
    try:
        sum_kop = parse_kopecks(data.sum)
    except AmountError as exc:
        raise InvalidInput(f"sum: {exc}") from None
    if not luhn_valid(order):
        raise BadOrderNumber("order: not a valid order number (digits passing the Luhn check)")
    return WithdrawRequest(order, sum_kop)
