"""Errors as JSON, mapped once for every app.

Every error leaves as ``{"error": "..."}`` with its status, 404 and 405
included. An actor's RemoteError maps to the status its code means
(BAD_REQUEST 400, NOT_FOUND 404, UNAVAILABLE 503 with Retry-After,
UNKNOWN_OUTCOME 504); a service adds its own domain errors with
``map_error(app, LoginTaken, falcon.HTTPConflict)``.
"""

from __future__ import annotations

from collections.abc import Callable

import falcon
import msgspec

from actors.runtime.client import RemoteError
from actors.runtime.protocol import ErrorCode

__all__ = ["serialize_error", "remote_error_handler", "map_error", "not_found_sink", "json_body"]

json_body = msgspec.json.encode
"""Bytes of a JSON document (msgspec: fast, and exact for ints)."""


def serialize_error(req, resp, exc: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json_body({"error": exc.description or exc.title})


def http_error_for(exc: RemoteError) -> falcon.HTTPError:
    """The HTTP error an actor's Error reply means."""
    if exc.code == ErrorCode.BAD_REQUEST:
        return falcon.HTTPBadRequest(description=exc.reason)
    if exc.code == ErrorCode.NOT_FOUND:
        return falcon.HTTPNotFound(description=exc.reason)
    if exc.code == ErrorCode.UNAVAILABLE:
        return falcon.HTTPServiceUnavailable(
            description=exc.reason, retry_after=max(1, exc.retry_after_s)
        )
    if exc.code == ErrorCode.UNKNOWN_OUTCOME:
        return falcon.HTTPGatewayTimeout(description=exc.reason)
    return falcon.HTTPInternalServerError(description=exc.reason)


async def remote_error_handler(req, resp, exc: RemoteError, params) -> None:
    raise http_error_for(exc)


def map_error(app, exception: type[Exception], make: Callable[..., falcon.HTTPError]) -> None:
    """Answer ``exception`` with ``make(description=str(exc))`` wherever it is raised."""

    async def handler(req, resp, exc, params):
        raise make(description=str(exc))

    app.add_error_handler(exception, handler)


async def not_found_sink(req, resp):
    raise falcon.HTTPNotFound(description=f"no route {req.path}")
