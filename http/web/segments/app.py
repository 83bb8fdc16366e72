"""The segments Falcon app: `create_app(pool, ...)` wires it, `get_app()` reads the environment.

Store errors map to statuses once, here: SegmentExists 409, UnknownSegments 404,
ExpiryInPast and InvalidInput 400, an unreachable database 503 with Retry-After.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import falcon
import falcon.asgi

from actors.runtime.client import AsyncClient
from actors.runtime.pg.pool import LazyPool
from actors.segments import store
from actors.segments.config import Config
from actors.segments.messages import Nudge
from web.common.app import HealthResource, ReadyResource, SpecResource, base_app
from web.common.database import database_readiness, map_database_errors
from web.common.errors import map_error
from web.common.metrics import MetricsResource, RequestMetrics, metrics_enabled
from web.segments.openapi import SPEC
from web.segments.resources import (
    HistoryCsvResource,
    HistoryResource,
    SegmentResource,
    SegmentsResource,
    UserSegmentsResource,
)
from web.segments.validation import InvalidInput

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10  # per worker; the history stream holds one for its duration


def create_app(
    pool, on_expiry: Callable[[], None] | None = None, middleware: list | None = None
) -> falcon.asgi.App:
    """The app over a pool (LazyPool or asyncpg.Pool).

    Args:
        pool: where the store runs its queries.
        on_expiry: called (without waiting) after a change that set an expiry, to wake the
            reaper early.
        middleware: falcon middleware (metrics).
    """
    app = base_app(middleware)
    map_error(app, InvalidInput, falcon.HTTPBadRequest)
    map_error(app, store.ExpiryInPast, falcon.HTTPBadRequest)
    map_error(app, store.SegmentExists, falcon.HTTPConflict)
    map_error(app, store.UnknownSegments, falcon.HTTPNotFound)
    map_database_errors(app)

    ready = database_readiness(lambda: store.ping(pool))
    app.add_route("/api/segments", SegmentsResource(pool))
    app.add_route("/api/segments/{slug}", SegmentResource(pool))
    app.add_route("/api/users/{user_id}/segments", UserSegmentsResource(pool, on_expiry))
    app.add_route("/api/history", HistoryResource())
    # NOTE: one whole-segment field, the suffix checked in the resource: a template such as
    # "{period}.csv" compiles to a regex that misses a period with a newline (404, not 400).
    app.add_route("/api/history/{report}", HistoryCsvResource(pool))
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(ready))
    app.add_route("/metrics", MetricsResource())
    app.add_route("/openapi.json", SpecResource(SPEC))
    return app


class _Lifespan:
    """Closes the pool and the reaper's client when the worker stops."""

    def __init__(self, pool: LazyPool, reaper: AsyncClient):
        self.pool = pool
        self.reaper = reaper

    async def process_shutdown(self, scope, event):
        self.reaper.close()
        await self.pool.close()


def get_app() -> falcon.asgi.App:
    """The app of a gunicorn worker, configured from the environment."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(config.database_uri, max_size=POOL_MAX_SIZE, application_name="segments: http")
    reaper = AsyncClient(config.reaper_endpoint, peer="segments reaper")
    middleware = [RequestMetrics("segments", "http")] if metrics_enabled() else []
    middleware.append(_Lifespan(pool, reaper))
    return create_app(pool, lambda: reaper.tell(Nudge()), middleware)
