"""The gophermart Falcon app: `create_app(pool, ...)` wires it, `get_app()` reads the
environment.

Errors map to statuses once, here: bad input 400 (web.common), a number failing Luhn
422, a taken login or order number 409, too little money 402, an unreachable database
503 with Retry-After. An upload wakes every instance's poller, on any host, this
one's included, by a NOTIFY after it committed (fire and forget; the pollers' idle
poll covers a lost one).
"""

from __future__ import annotations

import os
from collections.abc import Callable

import falcon

from actors.gophermart import store
from actors.gophermart.config import Config
from actors.runtime.pg.notify import Notifier
from actors.runtime.pg.pool import LazyPool
from web.common.app import App, Middleware, add_probes, base_app
from web.common.database import Database, database_readiness, map_database_errors
from web.common.errors import map_errors, payment_required
from web.common.metrics import request_metrics
from web.gophermart.metrics import SERVICE, poll_gauges
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
from web.gophermart.validation import BadOrderNumber

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10


def _unauthorized(description: str) -> falcon.HTTPError:
    return falcon.HTTPUnauthorized(description=description, challenges=["Bearer"])


def create_app(
    pool: Database,
    secret: str,
    token_ttl_s: int,
    on_upload: Callable[[str], None] | None = None,
    middleware: list[Middleware] | None = None,
) -> App:
    """The app over the worker's LazyPool.

    Args:
        pool: where the store runs its queries.
        secret: the JWT signing secret; token_ttl_s: token lifetime.
        on_upload: called (without waiting) with a newly uploaded order number.
        middleware: falcon middleware (metrics).
    """
    app = base_app(middleware)
    map_errors(
        app,
        {
            BadOrderNumber: (falcon.HTTPUnprocessableEntity, None),
            store.LoginTaken: (falcon.HTTPConflict, "login: taken by another user"),
            store.UnknownUser: (
                _unauthorized,
                "not authenticated: the token names no user of this service; log in again",
            ),
            store.OrderOwnedByAnother: (
                falcon.HTTPConflict,
                "order number: uploaded by another user",
            ),
            store.OrderAlreadyWithdrawn: (
                falcon.HTTPConflict,
                "order: a withdrawal against this order number exists",
            ),
            store.InsufficientFunds: (payment_required, "sum: more than the current balance"),
        },
    )
    map_database_errors(app)

    auth = Auth(secret, token_ttl_s)
    app.add_route("/api/user/register", RegisterResource(pool, auth))
    app.add_route("/api/user/login", LoginResource(pool, auth))
    app.add_route("/api/user/orders", OrdersResource(pool, auth, on_upload))
    app.add_route("/api/user/balance", BalanceResource(pool, auth))
    app.add_route("/api/user/balance/withdraw", WithdrawResource(pool, auth))
    app.add_route("/api/user/withdrawals", WithdrawalsResource(pool, auth))
    add_probes(app, SPEC, database_readiness(lambda: store.ping(pool)), poll_gauges(pool))
    return app


def get_app() -> App:
    """The app of a gunicorn worker, configured from the environment (set by the cli)."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(
        config.database_uri, max_size=POOL_MAX_SIZE, application_name="gophermart: http"
    )
    notifier = Notifier(pool, "gophermart uploads")

    def wake_pollers(number: str) -> None:
        notifier.notify(store.ORDERS_CHANNEL)

    return create_app(
        pool, config.secret, config.token_ttl_s, wake_pollers, request_metrics(SERVICE)
    )
