"""The segments Falcon app: `create_app(pool, ...)` wires it, `get_app()` reads the environment.

Store errors map to statuses once, here: SegmentExists 409, UnknownSegments 404,
ExpiryInPast 400 (InvalidInput too, in web.common), an unreachable database 503 with
Retry-After.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import falcon

from actors.runtime.client import AsyncClient
from actors.runtime.pg.pool import LazyPool
from actors.segments import store
from actors.segments.config import Config
from actors.segments.messages import Nudge
from web.common.app import App, CloseOnShutdown, Middleware, add_probes, base_app
from web.common.database import Database, database_readiness, map_database_errors
from web.common.errors import map_errors
from web.common.metrics import request_metrics
from web.segments.metrics import SERVICE
from web.segments.openapi import SPEC
from web.segments.resources import (
    HistoryCsvResource,
    HistoryResource,
    SegmentResource,
    SegmentsResource,
    UserSegmentsResource,
)

__all__ = ["create_app", "get_app"]

POOL_MAX_SIZE = 10  # per worker; the history stream holds one for its duration


def create_app(
    pool: Database,
    on_expiry: Callable[[], None] | None = None,
    middleware: list[Middleware] | None = None,
) -> App:
    """The app over the worker's LazyPool.

    Args:
        pool: where the store runs its queries.
        on_expiry: called (without waiting) after a change that set an expiry, to wake the
            reaper early.
        middleware: falcon middleware (metrics).
    """
    app = base_app(middleware)
    map_errors(
        app,
        {
            store.ExpiryInPast: (falcon.HTTPBadRequest, None),
            store.SegmentExists: (falcon.HTTPConflict, None),
            store.UnknownSegments: (falcon.HTTPNotFound, None),
        },
    )
    map_database_errors(app)

    app.add_route("/api/segments", SegmentsResource(pool))
    app.add_route("/api/segments/{slug}", SegmentResource(pool))
    app.add_route("/api/users/{user_id}/segments", UserSegmentsResource(pool, on_expiry))
    app.add_route("/api/history", HistoryResource())
    # NOTE: one whole-segment field, the suffix checked in the resource: a template such as
    # "{period}.csv" compiles to a regex that misses a period with a newline (404, not 400).
    app.add_route("/api/history/{report}", HistoryCsvResource(pool))
    add_probes(app, SPEC, database_readiness(lambda: store.ping(pool)))
    return app


def get_app() -> App:
    """The app of a gunicorn worker, configured from the environment."""
    config = Config.from_env(os.environ, [])
    pool = LazyPool(config.database_uri, max_size=POOL_MAX_SIZE, application_name="segments: http")
    reaper = AsyncClient(config.reaper_endpoint, peer="segments reaper")
    middleware: list[Middleware] = [*request_metrics(SERVICE), CloseOnShutdown(pool, reaper)]

    def nudge() -> None:
        reaper.tell(Nudge())

    return create_app(pool, nudge, middleware)
