"""The gophermart Falcon app: `create_app(pool, ...)` wires it, `get_app()` reads the
environment.

Errors map to statuses once, here: bad input 400, a number failing Luhn 422, a taken
login or order number 409, too little money 402, an unreachable database 503 with
Retry-After. An upload nudges this instance's poller over ZMQ (fire and forget).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import falcon
import falcon.asgi

from actors.gophermart import store
from actors.gophermart.config import Config
from actors.gophermart.messages import GmNudge
from actors.runtime.client import AsyncClient
from actors.runtime.pg import transient_errors
from actors.runtime.pgpool import LazyPool
from web.common.app import HealthResource, ReadyResource, SpecResource, base_app
from web.common.database import database_readiness, map_database_errors
from web.common.metrics import MetricsResource, RequestMetrics, metrics_enabled
from web.gophermart.openapi import SPEC
from web.gophermart.resources import (
    Auth,
    BalanceResource,
    LoginResource,
    OrdersResource,
    RegisterResource,
    WithdrawalsResource,
    WithdrawResource,
)
from web.gophermart.validation import BadOrderNumber, InvalidInput

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10
# (exception, HTTP error, description; None: the exception's own message)
_ERRORS = (
    (InvalidInput, falcon.HTTPBadRequest, None),
    (BadOrderNumber, falcon.HTTPUnprocessableEntity, None),
    (store.LoginTaken, falcon.HTTPConflict, "login: taken by another user"),
    (
        store.UnknownUser,
        lambda description: falcon.HTTPUnauthorized(description=description, challenges=["Bearer"]),
        "not authenticated: the token names no user of this service; log in again",
    ),
    (store.OrderOwnedByAnother, falcon.HTTPConflict, "order number: uploaded by another user"),
    (
        store.OrderAlreadyWithdrawn,
        falcon.HTTPConflict,
        "order: a withdrawal against this order number exists",
    ),
    (
        store.InsufficientFunds,
        lambda description: falcon.HTTPError(falcon.HTTP_402, description=description),
        "sum: more than the current balance",
    ),
)


def _handler(make: Callable[..., falcon.HTTPError], description: str | None):
    async def handler(req, resp, exc, params):
        raise make(description=description or str(exc))

    return handler


def create_app(
    pool,
    secret: str,
    token_ttl_s: int,
    on_upload: Callable[[str], None] | None = None,
    middleware: list | None = None,
) -> falcon.asgi.App:
    """The app over a pool (LazyPool or asyncpg.Pool).

    Args:
        pool: where the store runs its queries.
        secret: the JWT signing secret; token_ttl_s: token lifetime.
        on_upload: called (without waiting) with a newly uploaded order number.
        middleware: falcon middleware (metrics).
    """
    app = base_app(middleware)
    for exception, make, description in _ERRORS:
        app.add_error_handler(exception, _handler(make, description))
    map_database_errors(app)

    ready = database_readiness(lambda: store.ping(pool))
    auth = Auth(secret, token_ttl_s)
    app.add_route("/api/user/register", RegisterResource(pool, auth))
    app.add_route("/api/user/login", LoginResource(pool, auth))
    app.add_route("/api/user/orders", OrdersResource(pool, auth, on_upload))
    app.add_route("/api/user/balance", BalanceResource(pool, auth))
    app.add_route("/api/user/balance/withdraw", WithdrawResource(pool, auth))
    app.add_route("/api/user/withdrawals", WithdrawalsResource(pool, auth))
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(ready))

    async def poll_metrics() -> list:
        from prometheus_client.core import GaugeMetricFamily

        try:
            pending, oldest, pause = await store.poll_state(pool)
        except transient_errors():
            return []
        return [
            GaugeMetricFamily(
                "gophermart_orders_pending",
                "Orders NEW or PROCESSING (waiting for a final accrual)",
                value=pending,
            ),
            GaugeMetricFamily(
                "gophermart_oldest_pending_seconds",
                "How long the oldest pending order has waited",
                value=oldest,
            ),
            GaugeMetricFamily(
                "gophermart_accrual_pause_seconds",
                "Seconds left of the pause a 429 imposed",
                value=pause,
            ),
        ]

    app.add_route("/metrics", MetricsResource(poll_metrics))
    app.add_route("/openapi.json", SpecResource(SPEC))
    return app


def get_app() -> falcon.asgi.App:
    """The app of a gunicorn worker, configured from the environment (set by the cli)."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(
        config.database_uri, max_size=POOL_MAX_SIZE, application_name="gophermart: http"
    )
    middleware = [RequestMetrics("gophermart", "http")] if metrics_enabled() else []
    poller = AsyncClient(config.poller_endpoint, peer="gophermart poller")
    return create_app(
        pool,
        config.secret,
        config.token_ttl_s,
        lambda number: poller.tell(GmNudge(number)),
        middleware,
    )
