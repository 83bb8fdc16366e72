"""Order numbers: digits only, checked with the Luhn algorithm.

gophermart (uploads, withdrawals) and accrual (registered orders) both check them.
"""

from __future__ import annotations

__all__ = ["MAX_DIGITS", "checksum_digit", "is_digits", "luhn_valid"]

MAX_DIGITS = 64
"""Longest order number accepted: the seed says "arbitrary length"; 64 digits keep a
number in one short index key and one short URL (payment card numbers have 19)."""

_DIGITS = frozenset("0123456789")


def is_digits(text: str) -> bool:
    """True for 1..MAX_DIGITS ASCII digits (no sign, space or Unicode digit)."""
    return 0 < len(text) <= MAX_DIGITS and all(ch in _DIGITS for ch in text)


def _sum(digits: str, double_first: bool) -> int:
    total = 0
    double = double_first
    for ch in reversed(digits):
        value = ord(ch) - 48
        if double:
            value *= 2
            if value > 9:
                value -= 9
        total += value
        double = not double
    return total


def luhn_valid(number: str) -> bool:
    """True when `number` is ASCII digits whose Luhn checksum is 0 (mod 10).

    Args:
        number: the order number as text.

    Returns:
        False for anything that is not 1..MAX_DIGITS ASCII digits or fails the check.
    """
    return is_digits(number) and _sum(number, double_first=False) % 10 == 0


def checksum_digit(prefix: str) -> str:
    """The digit that, appended to `prefix`, makes a Luhn-valid number (tests, bench)."""
    return str((10 - _sum(prefix, double_first=True) % 10) % 10)
