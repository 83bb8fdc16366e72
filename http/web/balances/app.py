"""The balances Falcon app: `create_app(pool, nudger)` wires it, `get_app()` reads env.

Store errors map to statuses once, here: UsernameTaken 409, UnknownUser and
UnknownTask 404, IdempotencyMismatch 409, bad input 400 (web.common), an unreachable
database 503 with Retry-After (for a POST whose outcome is unknown: retry with the
same Idempotency-Key).
"""

from __future__ import annotations

import os

import falcon

from actors.balances import store
from actors.balances.config import Config
from actors.balances.intake import Intake
from actors.balances.nudger import Nudger
from actors.runtime.pg.pool import LazyPool
from web.balances.metrics import SERVICE, queue_gauges
from web.balances.openapi import SPEC
from web.balances.resources import (
    AmountResource,
    TaskResource,
    UserResource,
    UsersResource,
    UserTasksResource,
)
from web.common.app import App, CloseOnShutdown, Middleware, add_probes, base_app
from web.common.database import Database, database_readiness, map_database_errors
from web.common.errors import map_errors
from web.common.metrics import request_metrics

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10
"""Connections per HTTP worker process."""


def create_app(
    pool: Database, nudger: Nudger | None = None, middleware: list[Middleware] | None = None
) -> App:
    """The app over the worker's LazyPool.

    Args:
        pool: where the store runs its queries.
        nudger: tells the owning worker actor about a new task (default: NOTIFY only,
            over the pool).
        middleware: falcon middleware (metrics).
    """
    nudger = nudger or Nudger(pool)
    app = base_app([*(middleware or []), CloseOnShutdown(pool, nudger)])
    map_errors(
        app,
        {
            store.UsernameTaken: (
                falcon.HTTPConflict,
                lambda exc: f"username: {exc.args[0]!r} is taken",
            ),
            store.UnknownUser: (falcon.HTTPNotFound, lambda exc: f"id: no user {exc.args[0]}"),
            store.UnknownTask: (
                falcon.HTTPNotFound,
                lambda exc: f"task_id: no task {exc.args[0]}",
            ),
            store.IdempotencyMismatch: (falcon.HTTPConflict, None),
        },
    )
    map_database_errors(app)

    app.add_route("/api/v1/user", UsersResource(pool))
    app.add_route("/api/v1/user/{user_id}", UserResource(pool))
    app.add_route("/api/v1/user/{user_id}/amount", AmountResource(Intake(pool, nudger)))
    app.add_route("/api/v1/user/{user_id}/tasks", UserTasksResource(pool))
    app.add_route("/api/v1/task/{task_id}", TaskResource(pool))
    add_probes(app, SPEC, database_readiness(lambda: store.ping(pool)), queue_gauges(pool))
    return app


def get_app() -> App:
    """The app of a gunicorn worker: settings from the environment."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(config.database_uri, max_size=POOL_MAX_SIZE, application_name="balances http")
    local = [config.worker_endpoint(i) for i in range(config.workers)]
    return create_app(pool, Nudger(pool, local), request_metrics(SERVICE))
