"""accrual's routes: reward rules, order registration, an order's calculation.

Resources parse (validation.py), call actors.accrual.store and answer; store errors
map to statuses once, in app.py.
"""

from __future__ import annotations

import math

import falcon
import falcon.asgi

from actors.accrual import store
from actors.shared.luhn import is_digits
from actors.shared.money import kopecks_json
from web.accrual.validation import MAX_BODY_BYTES, parse_order, parse_rule
from web.common.database import Database
from web.common.requests import read_json_body
from web.common.responses import send_json
from web.common.validation import InvalidInput

__all__ = ["GoodsResource", "OrderResource", "OrdersResource"]


class GoodsResource:
    """POST /api/goods: register a reward rule."""

    def __init__(self, pool: Database):
        self.pool = pool

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        rule = parse_rule(await read_json_body(req, MAX_BODY_BYTES))
        await store.add_rule(self.pool, rule)
        send_json(
            resp,
            {
                "match": rule.match,
                "reward": kopecks_json(rule.reward_hundredths),
                "reward_type": rule.reward_type,
            },
        )


class OrdersResource:
    """POST /api/orders: register an order for calculation (202)."""

    def __init__(self, pool: Database, delay_s: float):
        self.pool, self.delay_s = pool, delay_s

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        order = parse_order(await read_json_body(req, MAX_BODY_BYTES))
        await store.register_order(self.pool, order.number, order.goods, self.delay_s)
        send_json(resp, {"order": order.number, "status": "REGISTERED"}, falcon.HTTP_202)


class OrderResource:
    """GET /api/orders/{number}, counted against the per-minute limit (0: none)."""

    def __init__(self, pool: Database, rate_limit: int):
        self.pool, self.rate_limit = pool, rate_limit

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, number: str
    ) -> None:
        if self.rate_limit:
            count, left_s = await store.count_request(self.pool)
            if count > self.rate_limit:
                # NOTE: text, not JSON: the course's accrual answers a 429 so.
                resp.status = falcon.HTTP_429
                resp.content_type = falcon.MEDIA_TEXT
                resp.set_header("Retry-After", str(max(1, math.ceil(left_s))))
                resp.text = f"No more than {self.rate_limit} requests per minute allowed"
                return
        if not is_digits(number):
            raise InvalidInput("number: expected 1 to 64 digits")
        info = await store.get_order(self.pool, number)
        if info is None:
            resp.status = falcon.HTTP_204
            return
        payload: dict[str, object] = {"order": info.number, "status": info.status}
        if info.accrual_kop is not None:
            payload["accrual"] = kopecks_json(info.accrual_kop)
        send_json(resp, payload)
