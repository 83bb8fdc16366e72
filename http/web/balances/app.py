"""The balances Falcon app: `create_app(pool, nudger)` wires it, `get_app()` reads env.

Store errors map to statuses once, here: UsernameTaken 409, UnknownUser and
UnknownTask 404, IdempotencyMismatch 409, an unreachable database 503 with
Retry-After (for a POST whose outcome is unknown: retry with the same
Idempotency-Key).
"""

from __future__ import annotations

import os

import falcon
import falcon.asgi

from actors.balances import store
from actors.balances.config import Config
from actors.balances.nudger import Nudger
from actors.runtime.pg import transient_errors
from actors.runtime.pgpool import LazyPool
from web.balances.openapi import SPEC
from web.balances.resources import (
    AmountResource,
    TaskResource,
    UserResource,
    UsersResource,
    UserTasksResource,
)
from web.common.app import HealthResource, ReadyResource, SpecResource, base_app
from web.common.database import database_readiness, map_database_errors
from web.common.errors import map_error
from web.common.metrics import MetricsResource, RequestMetrics, metrics_enabled

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10
"""Connections per HTTP worker process."""


def _messages(app) -> None:
    async def taken(req, resp, exc, params):
        raise falcon.HTTPConflict(description=f"username: {exc.args[0]!r} is taken")

    async def unknown_user(req, resp, exc, params):
        raise falcon.HTTPNotFound(description=f"id: no user {exc.args[0]}")

    async def unknown_task(req, resp, exc, params):
        raise falcon.HTTPNotFound(description=f"task_id: no task {exc.args[0]}")

    app.add_error_handler(store.UsernameTaken, taken)
    app.add_error_handler(store.UnknownUser, unknown_user)
    app.add_error_handler(store.UnknownTask, unknown_task)
    map_error(app, store.IdempotencyMismatch, falcon.HTTPConflict)
    map_database_errors(app)


class _Lifespan:
    """Closes the pool and the nudge sockets when the worker stops."""

    def __init__(self, pool, nudger: Nudger):
        self.pool = pool
        self.nudger = nudger

    async def process_shutdown(self, scope, event):
        self.nudger.close()
        if hasattr(self.pool, "close"):
            await self.pool.close()


def create_app(
    pool, nudger: Nudger | None = None, middleware: list | None = None
) -> falcon.asgi.App:
    """The app over a pool (LazyPool, asyncpg.Pool or one connection).

    Args:
        pool: where the store runs its queries.
        nudger: tells the owning worker actor about a new task (default: over the pool).
        middleware: falcon middleware (metrics).
    """
    nudger = nudger or Nudger(pool)
    app = base_app([*(middleware or []), _Lifespan(pool, nudger)])
    _messages(app)

    ready = database_readiness(lambda: store.ping(pool))
    app.add_route("/api/v1/user", UsersResource(pool))
    app.add_route("/api/v1/user/{user_id}", UserResource(pool))
    app.add_route("/api/v1/user/{user_id}/amount", AmountResource(pool, nudger))
    app.add_route("/api/v1/user/{user_id}/tasks", UserTasksResource(pool))
    app.add_route("/api/v1/task/{task_id}", TaskResource(pool))
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(ready))

    async def queue_metrics() -> list:
        from prometheus_client.core import GaugeMetricFamily

        try:
            queued, age = await store.queue_state(pool)
        except transient_errors():
            return []
        return [
            GaugeMetricFamily(
                "balances_tasks_queued", "Tasks accepted, not yet applied", value=queued
            ),
            GaugeMetricFamily(
                "balances_oldest_queued_seconds",
                "How long the oldest queued task has waited",
                value=age,
            ),
        ]

    app.add_route("/metrics", MetricsResource(queue_metrics))
    app.add_route("/openapi.json", SpecResource(SPEC))
    return app


def get_app() -> falcon.asgi.App:
    """The app of a gunicorn worker: settings from the environment."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(config.database_uri, max_size=POOL_MAX_SIZE, application_name="balances http")
    middleware = [RequestMetrics("balances", "http")] if metrics_enabled() else []
    return create_app(pool, middleware=middleware)
