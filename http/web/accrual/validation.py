"""Checking accrual requests: every rejection is an InvalidInput (400) naming the field.

Bodies are JSON objects without unknown fields (decoded into the Structs below, so
msgspec names the field of a missing, unknown or out-of-range value); numbers are
decoded exactly (Decimal, never float). As the course's accrual answers, an order
number failing Luhn is a 400 too.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from actors.accrual.rewards import Good, Rule
from actors.shared.luhn import luhn_valid
from actors.shared.money import AmountError, parse_kopecks
from web.common.validation import InvalidInput, check_text, decode_json

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_GOODS",
    "MAX_TEXT_BYTES",
    "NewOrder",
    "OrderBody",
    "RuleBody",
    "parse_order",
    "parse_rule",
]

MAX_BODY_BYTES = 256 * 1024
"""Bytes of a POST body (413 beyond): MAX_GOODS goods with descriptions of
MAX_TEXT_BYTES fit, JSON-escaped."""
MAX_GOODS = 200
MAX_TEXT_BYTES = 1024
MAX_MATCH_BYTES = 256
MAX_PERCENT_HUNDREDTHS = 100_00
"""A percent reward is at most 100%."""


class RuleBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/goods; values are checked by parse_rule (exact numbers, no coercion)."""

    match: Any
    reward: Any
    reward_type: Any


class GoodBody(msgspec.Struct, forbid_unknown_fields=True):
    description: Any
    price: Any


class OrderBody(msgspec.Struct, forbid_unknown_fields=True):
    """POST /api/orders."""

    order: Any
    goods: list[GoodBody]


_RULE = msgspec.json.Decoder(RuleBody, float_hook=Decimal)
_ORDER = msgspec.json.Decoder(OrderBody, float_hook=Decimal)


class NewOrder(NamedTuple):
    number: str
    goods: list[Good]


def _no_nul(text: str, name: str) -> str:
    if "\x00" in text:
        raise InvalidInput(f"{name}: NUL characters are not allowed")
    return text


def parse_rule(body: bytes) -> Rule:
    """{"match": text, "reward": number > 0, "reward_type": "%" | "pt"}."""
    data = decode_json(body, _RULE)
    match = _no_nul(check_text(data.match, "match", MAX_MATCH_BYTES), "match")
    kind = data.reward_type
    if kind not in ("%", "pt"):
        raise InvalidInput('reward_type: expected "%" or "pt"')
    try:
        hundredths = parse_kopecks(data.reward)
    except AmountError as exc:
        raise InvalidInput(f"reward: {exc}") from None
    if kind == "%" and hundredths > MAX_PERCENT_HUNDREDTHS:
        raise InvalidInput("reward: a percent reward is at most 100")
    return Rule(match, hundredths, kind)


def parse_order(body: bytes) -> NewOrder:
    """{"order": "<Luhn-valid digits>", "goods": [{"description", "price"}, ...]}."""
    data = decode_json(body, _ORDER)
    number = data.order
    if not isinstance(number, str) or not luhn_valid(number):
        raise InvalidInput("order: expected a string of digits passing the Luhn check")
    if not data.goods:
        raise InvalidInput("goods: expected a non-empty array")
    if len(data.goods) > MAX_GOODS:
        raise InvalidInput(f"goods: more than {MAX_GOODS} items")
    parsed = []
    for index, item in enumerate(data.goods):
        where = f"goods[{index}]."
        description = check_text(
            item.description, where + "description", MAX_TEXT_BYTES, allow_empty=True
        )
        _no_nul(description, where + "description")
        try:
            price = parse_kopecks(item.price, allow_zero=True)
        except AmountError as exc:
            raise InvalidInput(f"{where}price: {exc}") from None
        parsed.append(Good(description, price))
    return NewOrder(number, parsed)
