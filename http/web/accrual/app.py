"""The accrual Falcon app: `create_app(pool, ...)` wires it, `get_app()` reads the
environment.

    POST /api/goods            {"match", "reward", "reward_type"}  200; 400; 409 known match
    POST /api/orders           {"order", "goods": [...]}           202; 400; 409 known order
    GET  /api/orders/{number}  200 {"order", "status", "accrual"?}; 204 unknown;
                               429 + Retry-After + text body over ACCRUAL_RATE_LIMIT a minute
"""

from __future__ import annotations

import math
import os

import falcon
import falcon.asgi

from actors.accrual import store
from actors.accrual.config import Config
from actors.runtime.pgpool import LazyPool
from actors.shared.luhn import is_digits
from actors.shared.money import ENCODER, kopecks_json
from web.accrual.openapi import SPEC
from web.accrual.validation import InvalidInput, parse_order, parse_rule, read_body
from web.common.app import HealthResource, ReadyResource, SpecResource, base_app
from web.common.database import database_readiness, map_database_errors
from web.common.metrics import MetricsResource, RequestMetrics, metrics_enabled

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10


def _json(resp, payload, status: str = falcon.HTTP_200) -> None:
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = ENCODER.encode(payload)


class GoodsResource:
    def __init__(self, pool):
        self.pool = pool

    async def on_post(self, req, resp):
        rule = parse_rule(await read_body(req))
        await store.add_rule(self.pool, rule)
        _json(
            resp,
            {
                "match": rule.match,
                "reward": kopecks_json(rule.reward_hundredths),
                "reward_type": rule.reward_type,
            },
        )


class OrdersResource:
    def __init__(self, pool, delay_s: float):
        self.pool, self.delay_s = pool, delay_s

    async def on_post(self, req, resp):
        order = parse_order(await read_body(req))
        await store.register_order(self.pool, order.number, order.goods, self.delay_s)
        _json(resp, {"order": order.number, "status": "REGISTERED"}, falcon.HTTP_202)


class OrderResource:
    """GET /api/orders/{number}, counted against the per-minute limit (0: none)."""

    def __init__(self, pool, rate_limit: int):
        self.pool, self.rate_limit = pool, rate_limit

    async def on_get(self, req, resp, number: str):
        if self.rate_limit:
            count, left_s = await store.count_request(self.pool)
            if count > self.rate_limit:
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
        payload = {"order": info.number, "status": info.status}
        if info.accrual_kop is not None:
            payload["accrual"] = kopecks_json(info.accrual_kop)
        _json(resp, payload)


def _handler(make, description: str | None):
    async def handler(req, resp, exc, params):
        raise make(description=description or str(exc))

    return handler


def create_app(
    pool, rate_limit: int = 0, delay_s: float = 1.0, middleware: list | None = None
) -> falcon.asgi.App:
    """The app over a pool (LazyPool or asyncpg.Pool).

    Args:
        rate_limit: GET /api/orders/{number} requests a minute, service-wide (0: none).
        delay_s: how long after registration an order shows its final status.
    """
    app = base_app(middleware)
    app.add_error_handler(InvalidInput, _handler(falcon.HTTPBadRequest, None))
    app.add_error_handler(
        store.RuleExists, _handler(falcon.HTTPConflict, "match: a rule with this match exists")
    )
    app.add_error_handler(
        store.OrderExists, _handler(falcon.HTTPConflict, "order: registered already")
    )
    map_database_errors(app)

    ready = database_readiness(lambda: store.ping(pool))
    app.add_route("/api/goods", GoodsResource(pool))
    app.add_route("/api/orders", OrdersResource(pool, delay_s))
    app.add_route("/api/orders/{number}", OrderResource(pool, rate_limit))
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(ready))
    app.add_route("/metrics", MetricsResource())
    app.add_route("/openapi.json", SpecResource(SPEC))
    return app


def get_app() -> falcon.asgi.App:
    """The app of a gunicorn worker, configured from the environment (set by the cli)."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(config.database_uri, max_size=POOL_MAX_SIZE, application_name="accrual: http")
    middleware = [RequestMetrics("accrual", "http")] if metrics_enabled() else []
    return create_app(pool, config.rate_limit, config.delay_s, middleware)
