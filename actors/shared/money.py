"""Exact money: amounts are integer kopecks (hundredths); JSON numbers in and out.

Amounts arrive as JSON numbers with at most two decimals ("sum": 751, 1000.95) and
leave the same way (459, 729.98, 500.5). No binary float is ever used: requests are
decoded with `msgspec` turning every non-integer number into `decimal.Decimal` from its
text (`DECODER`), and amounts leave as `Decimal` written as JSON numbers (`ENCODER`).
Rewards are rounded half up to a kopeck (14599.50 at 5% is 729.975 -> 729.98).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import msgspec

__all__ = [
    "DECODER",
    "ENCODER",
    "MAX_KOPECKS",
    "AmountError",
    "format_kopecks",
    "kopecks_json",
    "parse_kopecks",
    "percent_of",
    "round_kopecks",
]

MAX_KOPECKS = 10**15
"""Largest amount accepted (10 trillion roubles): far inside PostgreSQL's bigint, so
sums of many amounts never overflow."""

DECODER = msgspec.json.Decoder(float_hook=Decimal)
"""JSON decoder that keeps every non-integer number exact, as Decimal."""

ENCODER = msgspec.json.Encoder(decimal_format="number")
"""JSON encoder writing Decimal as a JSON number (729.98), not a string."""

_HUNDRED = Decimal(100)
_KOPECK = Decimal(1)


class AmountError(ValueError):
    """The value is not an amount this service accepts; the message says why."""


def parse_kopecks(value: object, *, allow_zero: bool = False) -> int:
    """Kopecks from a decoded JSON number with at most two decimals.

    Args:
        value: an int or a Decimal from `DECODER` (bool, str, float and None are refused).
        allow_zero: accept 0 (rule rewards, prices); amounts to move must be positive.

    Returns:
        The amount in kopecks.

    Raises:
        AmountError: not a number, negative (or zero), more than two decimals, too big.
    """
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise AmountError("must be a number")
    if isinstance(value, Decimal) and not value.is_finite():
        raise AmountError("must be a finite number")
    # NOTE: compare before scaling so 1e999999999 never becomes a huge integer.
    if value > Decimal(MAX_KOPECKS) / _HUNDRED:
        raise AmountError(f"must be at most {format_kopecks(MAX_KOPECKS)}")
    if value < 0 or (value == 0 and not allow_zero):
        raise AmountError("must be positive" if not allow_zero else "must not be negative")
    scaled = Decimal(value) * _HUNDRED
    if scaled != scaled.to_integral_value():
        raise AmountError("must have at most two decimals")
    return int(scaled)


def kopecks_json(kopecks: int) -> int | Decimal:
    """The JSON number for an amount: 45900 -> 459, 72998 -> 729.98, 50050 -> 500.5."""
    whole, part = divmod(kopecks, 100)
    if part == 0:
        return whole
    return (Decimal(kopecks) / _HUNDRED).normalize()


def format_kopecks(kopecks: int) -> str:
    """The amount as text, as it appears in JSON (for messages and logs)."""
    return ENCODER.encode(kopecks_json(kopecks)).decode()


def percent_of(price_kopecks: int, percent: Decimal | int) -> Decimal:
    """`percent`% of a price, exact (not rounded; the caller rounds the order's sum)."""
    return Decimal(price_kopecks) * Decimal(percent) / _HUNDRED


def round_kopecks(amount: Decimal) -> int:
    """An exact kopeck amount rounded half up to a whole kopeck."""
    return int(amount.quantize(_KOPECK, rounding=ROUND_HALF_UP))
