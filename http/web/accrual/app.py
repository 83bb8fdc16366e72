"""The accrual Falcon app: `create_app(pool, ...)` wires it, `get_app()` reads the
environment.

    POST /api/goods            {"match", "reward", "reward_type"}  200; 400; 409 known match
    POST /api/orders           {"order", "goods": [...]}           202; 400; 409 known order
    GET  /api/orders/{number}  200 {"order", "status", "accrual"?}; 204 unknown;
                               429 + Retry-After + text body over ACCRUAL_RATE_LIMIT a minute

Bad input is 400 (web.common), a known match or order 409, an unreachable database 503.
"""

from __future__ import annotations

import os

import falcon

from actors.accrual import store
from actors.accrual.config import Config
from actors.runtime.pg.pool import LazyPool
from web.accrual.metrics import SERVICE
from web.accrual.openapi import SPEC
from web.accrual.resources import GoodsResource, OrderResource, OrdersResource
from web.common.app import App, Middleware, add_probes, base_app
from web.common.database import Database, database_readiness, map_database_errors
from web.common.errors import map_errors
from web.common.metrics import request_metrics

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10


def create_app(
    pool: Database,
    rate_limit: int = 0,
    delay_s: float = 1.0,
    middleware: list[Middleware] | None = None,
) -> App:
    """The app over the worker's LazyPool.

    Args:
        rate_limit: GET /api/orders/{number} requests a minute, service-wide (0: none).
        delay_s: how long after registration an order shows its final status.
    """
    app = base_app(middleware)
    map_errors(
        app,
        {
            store.RuleExists: (falcon.HTTPConflict, "match: a rule with this match exists"),
            store.OrderExists: (falcon.HTTPConflict, "order: registered already"),
        },
    )
    map_database_errors(app)

    app.add_route("/api/goods", GoodsResource(pool))
    app.add_route("/api/orders", OrdersResource(pool, delay_s))
    app.add_route("/api/orders/{number}", OrderResource(pool, rate_limit))
    add_probes(app, SPEC, database_readiness(lambda: store.ping(pool)))
    return app


def get_app() -> App:
    """The app of a gunicorn worker, configured from the environment (set by the cli)."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(config.database_uri, max_size=POOL_MAX_SIZE, application_name="accrual: http")
    return create_app(pool, config.rate_limit, config.delay_s, request_metrics(SERVICE))
