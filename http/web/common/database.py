"""The HTTP side of a PostgreSQL service's database: outages are 503s, /readyz asks it.

A request that meets an unreachable or restarting database (or a deadlock, or a
query timeout) changed nothing that is known to have committed: it is answered
503 with Retry-After, never 500, and a client retries (a POST with its
idempotency key where the service has one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import falcon
import falcon.asgi

from actors.runtime.pg import transient_errors
from actors.runtime.pg.pool import LazyPool
from web.common.app import ReadyCheck
from web.common.errors import map_errors

__all__ = ["Database", "RETRY_AFTER_S", "map_database_errors", "database_readiness"]

Database = LazyPool
"""What an app's store calls run on: the worker's lazy pool (tests pass one too)."""
RETRY_AFTER_S = 1


def _unavailable(description: str) -> falcon.HTTPError:
    return falcon.HTTPServiceUnavailable(description=description, retry_after=RETRY_AFTER_S)


def map_database_errors(app: falcon.asgi.App[Any, Any]) -> None:
    """Answer every transient database error with 503 + Retry-After."""
    map_errors(
        app,
        {
            error: (_unavailable, lambda exc: f"database unavailable: {exc}")
            for error in transient_errors()
            if issubclass(error, Exception)  # all are; add_error_handler takes Exceptions
        },
    )


def database_readiness(ping: Callable[[], Awaitable[object]]) -> ReadyCheck:
    """A ReadyResource check: ready while ``ping()`` (one query) succeeds."""

    async def check() -> tuple[bool, dict[str, Any]]:
        try:
            await ping()
        except transient_errors() as exc:
            return False, {"database": str(exc) or type(exc).__name__}
        return True, {"database": "ok"}

    return check
