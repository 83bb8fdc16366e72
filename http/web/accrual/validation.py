"""Checking accrual requests: every rejection is an InvalidInput (400) naming the field.

Bodies are JSON objects without unknown fields; numbers are decoded exactly. As the
course's accrual answers, an order number failing Luhn is a 400 too.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import falcon
import msgspec

from actors.accrual.rewards import Good, Rule
from actors.shared.luhn import luhn_valid
from actors.shared.money import DECODER, AmountError, parse_kopecks

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_GOODS",
    "MAX_TEXT_BYTES",
    "InvalidInput",
    "NewOrder",
    "parse_order",
    "parse_rule",
    "read_body",
]

MAX_BODY_BYTES = 256 * 1024
"""MAX_GOODS goods with descriptions of MAX_TEXT_BYTES fit."""
MAX_GOODS = 200
MAX_TEXT_BYTES = 1024
MAX_MATCH_BYTES = 256
MAX_PERCENT_HUNDREDTHS = 100_00
"""A percent reward is at most 100%."""


class InvalidInput(ValueError):
    """400: the message names the field and says what is wrong."""


class NewOrder(NamedTuple):
    number: str
    goods: list[Good]


async def read_body(req, limit: int = MAX_BODY_BYTES) -> bytes:
    """The whole body; 413 past `limit` bytes."""
    if req.content_length is not None and req.content_length > limit:
        raise falcon.HTTPContentTooLarge(description=f"body: longer than {limit} bytes")
    body = await req.stream.read(limit + 1)
    if len(body) > limit:
        raise falcon.HTTPContentTooLarge(description=f"body: longer than {limit} bytes")
    return body


def _object(value: Any, allowed: tuple[str, ...], where: str = "") -> dict[str, Any]:
    """A JSON object with exactly the `allowed` keys; `where` prefixes field names."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{where.rstrip('.') or 'body'}: expected a JSON object")
    for key in value:
        if key not in allowed:
            raise InvalidInput(f"{where}{key}: unknown field (allowed: {', '.join(allowed)})")
    for key in allowed:
        if key not in value:
            raise InvalidInput(f"{where}{key}: missing")
    return value


def _decode(body: bytes) -> Any:
    if not body.strip():
        raise InvalidInput("body: empty; expected a JSON object")
    try:
        return DECODER.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"body: malformed JSON or not UTF-8 ({exc})") from None


def _text(value: Any, name: str, limit: int, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a string")
    if not value and not allow_empty:
        raise InvalidInput(f"{name}: empty")
    if len(value.encode()) > limit:
        raise InvalidInput(f"{name}: longer than {limit} bytes")
    if "\x00" in value:
        raise InvalidInput(f"{name}: NUL characters are not allowed")
    return value


def parse_rule(body: bytes) -> Rule:
    """{"match": text, "reward": number > 0, "reward_type": "%" | "pt"}."""
    data = _object(_decode(body), ("match", "reward", "reward_type"))
    match = _text(data["match"], "match", MAX_MATCH_BYTES)
    kind = data["reward_type"]
    if kind not in ("%", "pt"):
        raise InvalidInput('reward_type: expected "%" or "pt"')
    try:
        hundredths = parse_kopecks(data["reward"])
    except AmountError as exc:
        raise InvalidInput(f"reward: {exc}") from None
    if kind == "%" and hundredths > MAX_PERCENT_HUNDREDTHS:
        raise InvalidInput("reward: a percent reward is at most 100")
    return Rule(match, hundredths, kind)


def parse_order(body: bytes) -> NewOrder:
    """{"order": "<Luhn-valid digits>", "goods": [{"description", "price"}, ...]}."""
    data = _object(_decode(body), ("order", "goods"))
    number = data["order"]
    if not isinstance(number, str) or not luhn_valid(number):
        raise InvalidInput("order: expected a string of digits passing the Luhn check")
    goods = data["goods"]
    if not isinstance(goods, list) or not goods:
        raise InvalidInput("goods: expected a non-empty array")
    if len(goods) > MAX_GOODS:
        raise InvalidInput(f"goods: more than {MAX_GOODS} items")
    parsed = []
    for index, item in enumerate(goods):
        where = f"goods[{index}]."
        item = _object(item, ("description", "price"), where)
        description = _text(
            item["description"], where + "description", MAX_TEXT_BYTES, allow_empty=True
        )
        try:
            price = parse_kopecks(item["price"], allow_zero=True)
        except AmountError as exc:
            raise InvalidInput(f"{where}price: {exc}") from None
        parsed.append(Good(description, price))
    return NewOrder(number, parsed)
