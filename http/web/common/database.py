"""The HTTP side of a PostgreSQL service's database: outages are 503s, /readyz asks it.

A request that meets an unreachable or restarting database (or a deadlock, or a
query timeout) changed nothing that is known to have committed: it is answered
503 with Retry-After, never 500, and a client retries (a POST with its
idempotency key where the service has one).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import falcon

from actors.runtime.pg import transient_errors

__all__ = ["RETRY_AFTER_S", "map_database_errors", "database_readiness"]

RETRY_AFTER_S = 1


async def _unavailable(req, resp, exc, params):
    raise falcon.HTTPServiceUnavailable(
        description=f"database unavailable: {exc}", retry_after=RETRY_AFTER_S
    )


def map_database_errors(app) -> None:
    """Answer every transient database error with 503 + Retry-After."""
    for error in transient_errors():
        app.add_error_handler(error, _unavailable)


def database_readiness(ping: Callable[[], Awaitable[object]]):
    """A ReadyResource check: ready while ``ping()`` (one query) succeeds."""

    async def check() -> tuple[bool, dict]:
        try:
            await ping()
        except transient_errors() as exc:
            return False, {"database": str(exc) or type(exc).__name__}
        return True, {"database": "ok"}

    return check
