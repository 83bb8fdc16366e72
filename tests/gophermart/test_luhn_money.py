"""actors.shared.luhn and actors.shared.money: order numbers and exact amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.shared import money
from actors.shared.luhn import checksum_digit, is_digits, luhn_valid


def test_luhn_known_numbers():
    assert luhn_valid("12345678903") and luhn_valid("9278923470") and luhn_valid("0")
    assert luhn_valid("2377225624") and luhn_valid("346436439")
    assert not luhn_valid("12345678902") and not luhn_valid("12345678901")
    for bad in ("", " 12345678903", "1234567890３", "-0", "12a", "1" * 65):
        assert not luhn_valid(bad)
    assert is_digits("1" * 64) and not is_digits("1" * 65)


@given(st.text("0123456789", min_size=1, max_size=40))
def test_checksum_digit_makes_valid_and_is_the_only_one(prefix):
    digit = checksum_digit(prefix)
    assert luhn_valid(prefix + digit)
    assert sum(luhn_valid(prefix + str(d)) for d in range(10)) == 1


@pytest.mark.parametrize(
    "text, kop",
    [
        (b"751", 75100),
        (b"1000.95", 100095),
        (b"0.01", 1),
        (b"1e2", 10000),
        (b"459.00", 45900),
        (b"1000.950", 100095),
        (b"10000000000000", 10**15),
    ],
)
def test_parse_kopecks_exact(text, kop):
    assert money.parse_kopecks(money.DECODER.decode(text)) == kop


@pytest.mark.parametrize(
    "text",
    [
        b"0",
        b"-1",
        b"0.001",
        b"1.005",
        b'"5"',
        b"true",
        b"null",
        b"[1]",
        b"1e999999999",
        b"10000000000000.01",
        b"123456789012345678901234567890",
    ],
)
def test_parse_kopecks_refuses(text):
    with pytest.raises(money.AmountError):
        money.parse_kopecks(money.DECODER.decode(text))


def test_parse_kopecks_refuses_binary_float():
    with pytest.raises(money.AmountError):
        money.parse_kopecks(0.1)


@given(st.integers(min_value=0, max_value=money.MAX_KOPECKS))
def test_kopecks_round_trip_through_json(kop):
    text = money.ENCODER.encode(money.kopecks_json(kop))
    assert b"e" not in text.lower() and b'"' not in text
    assert money.parse_kopecks(money.DECODER.decode(text), allow_zero=True) == kop


def test_json_numbers_as_the_seed_shows_them():
    out = money.ENCODER.encode(
        {"current": money.kopecks_json(50050), "withdrawn": money.kopecks_json(4200)}
    )
    assert out == b'{"current":500.5,"withdrawn":42}'
    assert money.format_kopecks(72998) == "729.98"
    assert money.round_kopecks(money.percent_of(1459950, 5)) == 72998
    assert money.round_kopecks(Decimal("0.5")) == 1 and money.round_kopecks(Decimal("0.49")) == 0
