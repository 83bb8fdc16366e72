"""Every SQL statement of accrual: rules, registered orders, the request counter.

An order's outcome is computed from the rules in the transaction that registers it and
revealed over the processing delay (`get_order` derives REGISTERED, PROCESSING and the
final status from the clock), so no background worker is needed and every worker and
instance answers the same. The per-minute counter is one row per minute upserted by
every GET: shared by all workers and instances, so the limit is the service's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from actors.accrual.rewards import Good, Rule, order_accrual
from actors.shared.money import ENCODER, kopecks_json

if TYPE_CHECKING:
    from actors.runtime.pg.pool import LazyPool

__all__ = [
    "SCHEMA_DIR",
    "OrderExists",
    "OrderInfo",
    "RuleExists",
    "add_rule",
    "count_request",
    "get_order",
    "ping",
    "register_order",
]


SCHEMA_DIR = Path(__file__).with_name("schema")
"""The numbered migrations, applied at start by actors.runtime.pg.migrate."""


class RuleExists(Exception):
    """A rule with this `match` is registered already (409)."""


class OrderExists(Exception):
    """The order number is registered already (409)."""


@dataclass(frozen=True, slots=True)
class OrderInfo:
    number: str
    status: str  # REGISTERED, PROCESSING, PROCESSED, INVALID
    accrual_kop: int | None


async def ping(db: LazyPool) -> None:
    """One round trip (readiness)."""
    async with db.acquire() as conn:
        await conn.fetchval("SELECT 1")


async def add_rule(db: LazyPool, rule: Rule) -> None:
    """Register a reward rule.

    Raises:
        RuleExists: a rule with the same `match` exists.
    """
    async with db.acquire() as conn:
        try:
            await conn.execute(
                "INSERT INTO accrual.rules (match, reward_hundredths, reward_type)"
                " VALUES ($1, $2, $3)",
                rule.match,
                rule.reward_hundredths,
                rule.reward_type,
            )
        except asyncpg.UniqueViolationError:
            raise RuleExists(rule.match) from None


def _goods_json(goods: list[Good]) -> str:
    return ENCODER.encode(
        [{"description": g.description, "price": kopecks_json(g.price_kop)} for g in goods]
    ).decode()


async def register_order(
    db: LazyPool, number: str, goods: list[Good], delay_s: float
) -> int | None:
    """Register an order; its outcome shows `delay_s` seconds later.

    Returns:
        The accrual in kopecks it will show, or None when it will be INVALID.

    Raises:
        OrderExists: the number is registered already.
    """
    descriptions = [g.description for g in goods]
    async with db.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT DISTINCT r.match, r.reward_hundredths, r.reward_type"
            " FROM unnest($1::text[]) AS g(description)"
            " JOIN accrual.rules r ON strpos(g.description, r.match) > 0",
            descriptions,
        )
        accrual = order_accrual(goods, [Rule(*row) for row in rows])
        inserted = await conn.fetchval(
            "INSERT INTO accrual.orders (number, goods, outcome, accrual_kop, ready_at)"
            " VALUES ($1, $2::jsonb, $3, $4, clock_timestamp() + make_interval(secs => $5))"
            " ON CONFLICT (number) DO NOTHING RETURNING true",
            number,
            _goods_json(goods),
            "INVALID" if accrual is None else "PROCESSED",
            accrual,
            float(delay_s),
        )
    if not inserted:
        raise OrderExists(number)
    return accrual


async def get_order(db: LazyPool, number: str) -> OrderInfo | None:
    """What the accrual system says about an order now, or None if it is unknown."""
    async with db.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT CASE WHEN clock_timestamp() >= ready_at THEN outcome"
            "  WHEN clock_timestamp() >= registered_at + (ready_at - registered_at) / 2"
            "  THEN 'PROCESSING' ELSE 'REGISTERED' END AS status,"
            " CASE WHEN clock_timestamp() >= ready_at THEN accrual_kop END AS accrual_kop"
            " FROM accrual.orders WHERE number = $1",
            number,
        )
    return None if row is None else OrderInfo(number, row["status"], row["accrual_kop"])


async def count_request(db: LazyPool) -> tuple[int, float]:
    """Count one request in the current minute.

    Returns:
        (requests in this minute so far, this one included; seconds until the next minute).
    """
    async with db.acquire() as conn, conn.transaction():
        # NOTE: a lost count after a crash is harmless; no need to wait for the WAL flush.
        await conn.execute("SET LOCAL synchronous_commit = off")
        row = await conn.fetchrow(
            "INSERT INTO accrual.rate_windows (window_start, requests)"
            " VALUES (date_trunc('minute', clock_timestamp()), 1)"
            " ON CONFLICT (window_start) DO UPDATE SET requests = rate_windows.requests + 1"
            " RETURNING requests, extract(epoch FROM window_start + interval '1 minute'"
            " - clock_timestamp())::float8 AS left_s"
        )
        assert row is not None  # an upsert RETURNING: one row
        if row["requests"] == 1:
            await conn.execute(
                "DELETE FROM accrual.rate_windows"
                " WHERE window_start < clock_timestamp() - interval '1 hour'"
            )
    return row["requests"], max(0.0, row["left_s"])
