"""Errors as JSON, mapped once for every app.

Every error leaves as ``{"error": "..."}`` with its status, 404 and 405
included. ``base_app`` maps what every app shares: InvalidInput 400, an
actor's RemoteError to the status its code means (BAD_REQUEST 400, NOT_FOUND
404, UNAVAILABLE 503 with Retry-After, UNKNOWN_OUTCOME 504). A service maps its
own domain errors with ONE table in its ``create_app``::

    map_errors(app, {
        store.LoginTaken: (falcon.HTTPConflict, "login: taken by another user"),
        store.UnknownUser: (falcon.HTTPNotFound, lambda exc: f"id: no user {exc.args[0]}"),
        store.IdempotencyMismatch: (falcon.HTTPConflict, None),  # the exception's message
    })
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import falcon
import falcon.asgi

from actors.runtime.client import RemoteError
from actors.runtime.protocol import ErrorCode
from web.common.responses import json_body

__all__ = [
    "Description",
    "ErrorTable",
    "http_error_for",
    "json_body",
    "map_errors",
    "not_found_sink",
    "payment_required",
    "remote_error_handler",
    "serialize_error",
]

Description = str | Callable[[Any], str] | None
"""What the error body says: a fixed text, a function of the exception, or (None) the
exception's own message."""
ErrorTable = Mapping[type[Exception], tuple[Callable[..., falcon.HTTPError], Description]]
"""exception -> (the falcon error to raise, called with description=..., its Description)."""


def serialize_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, exc: falcon.HTTPError
) -> None:
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


async def remote_error_handler(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, exc: RemoteError, params: dict[str, Any]
) -> None:
    raise http_error_for(exc)


def payment_required(description: str) -> falcon.HTTPError:
    """402, which falcon has no class for."""
    return falcon.HTTPError(falcon.HTTP_402, description=description)


def _describe(description: Description, exc: Exception) -> str:
    if description is None:
        return str(exc)
    if isinstance(description, str):
        return description
    return description(exc)


def _handler(make: Callable[..., falcon.HTTPError], description: Description) -> Any:
    async def handler(
        req: falcon.asgi.Request, resp: falcon.asgi.Response, exc: Exception, params: Any
    ) -> None:
        raise make(description=_describe(description, exc))

    return handler


def map_errors(app: falcon.asgi.App[Any, Any], table: ErrorTable) -> None:
    """Answer each exception of ``table`` with its HTTP error wherever it is raised."""
    for exception, (make, description) in table.items():
        app.add_error_handler(exception, _handler(make, description))


async def not_found_sink(
    req: falcon.asgi.Request, resp: falcon.asgi.Response | None, **kwargs: Any
) -> None:
    raise falcon.HTTPNotFound(description=f"no route {req.path}")
