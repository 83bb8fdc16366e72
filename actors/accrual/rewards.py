"""What an order earns: the sum over its goods of every rule whose `match` the good's
description contains (`%` of the price, or `pt` points), rounded half up to a kopeck
for the order as a whole. Exact: kopecks and hundredths in, Decimal in between."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from actors.shared.money import round_kopecks

__all__ = ["Good", "Rule", "order_accrual"]

_TEN_THOUSAND = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class Good:
    description: str
    price_kop: int


@dataclass(frozen=True, slots=True)
class Rule:
    match: str
    reward_hundredths: int
    reward_type: str  # "%" or "pt"


def good_reward(good: Good, rule: Rule) -> Decimal:
    """The exact reward `rule` gives `good` in kopecks (0 when it does not match)."""
    if rule.match not in good.description:
        return Decimal(0)
    if rule.reward_type == "%":
        return Decimal(good.price_kop) * rule.reward_hundredths / _TEN_THOUSAND
    return Decimal(rule.reward_hundredths)


def order_accrual(goods: list[Good], rules: list[Rule]) -> int | None:
    """The order's accrual in kopecks, or None when no good matches any rule (INVALID)."""
    total = Decimal(0)
    matched = False
    for good in goods:
        for rule in rules:
            if rule.match in good.description:
                matched = True
                total += good_reward(good, rule)
    return round_kopecks(total) if matched else None
