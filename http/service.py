"""What the setter and getter apps share: the store client, errors as JSON.

Every error leaves as ``{"error": "..."}`` with its status; an error from the
storage actor maps to the status its code means (UNAVAILABLE -> 503 with
Retry-After, UNKNOWN_OUTCOME -> 504).
"""

from __future__ import annotations

import os
import re
import secrets

import falcon
import falcon.asgi
import msgspec

from actors.client import AsyncClient, RemoteError
from actors.protocol import ErrorCode
from actors.records import FIELDS

__all__ = ["create_base_app", "raise_for", "store_from_env", "bus_from_env", "request_id_for", "record_json", "json_body"]

STORE_TIMEOUT_S = 5.0
"""Longer than the storage actor's own publish timeout, so it answers first."""

_encode = msgspec.json.encode


def json_body(payload) -> bytes:
    return _encode(payload)


def record_json(row: list) -> bytes:
    """{"result": record} from a storage row [user_id, 4 values]."""
    record = {"user_id": row[0]}
    record.update(zip(FIELDS, row[1:5]))
    return _encode({"result": record})


def _serialize_error(req, resp, exc: falcon.HTTPError) -> None:
    resp.content_type = falcon.MEDIA_JSON
    resp.data = _encode({"error": exc.description or exc.title})


def raise_for(exc: RemoteError):
    """Re-raise a storage error as the matching HTTP error."""
    if exc.code == ErrorCode.BAD_REQUEST:
        raise falcon.HTTPBadRequest(description=exc.reason)
    if exc.code == ErrorCode.NOT_FOUND:
        raise falcon.HTTPNotFound(description=exc.reason)
    if exc.code == ErrorCode.UNAVAILABLE:
        raise falcon.HTTPServiceUnavailable(description=exc.reason,
                                            retry_after=max(1, exc.retry_after_s))
    if exc.code == ErrorCode.UNKNOWN_OUTCOME:
        raise falcon.HTTPGatewayTimeout(description=exc.reason)
    raise falcon.HTTPInternalServerError(description=exc.reason)


async def _not_found(req, resp):
    raise falcon.HTTPNotFound(description=f"no route {req.path}")


_HTTP_VERSIONS = frozenset({"1.0", "1.1", "2", "3"})
"""The scope http_version values falcon's ASGI app accepts."""


class _App(falcon.asgi.App):
    """Refuses, as a JSON 400, a request line's HTTP version falcon cannot serve.

    uvicorn's HTTP/1 parser lets "HTTP/0.9" and "HTTP/2.0" through (http_version "0.9",
    "2.0"), and falcon raises on them before any of our code runs: a 500 otherwise.
    """

    async def __call__(self, scope, receive, send):
        version = scope.get("http_version", "1.1")
        if scope["type"] == "http" and version not in _HTTP_VERSIONS:
            body = _encode({"error": f"HTTP/{version}: unsupported HTTP version"})
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await super().__call__(scope, receive, send)


def create_base_app(middleware: list | None = None) -> falcon.asgi.App:
    """An ASGI app whose every error, 404 and 405 included, is JSON."""
    app = _App(middleware=middleware or [])
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(_serialize_error)
    app.add_sink(_not_found)
    return app


def bus_from_env() -> AsyncClient | None:
    """A client of the bus (for its stats), or None for a standalone replica."""
    url = os.environ.get("BUS_URL", "tcp://127.0.0.1:5555").strip()
    return None if url.lower() in ("", "none", "off") else AsyncClient(url, STORE_TIMEOUT_S)


_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_for(req, resp) -> str:
    """The client's X-Request-Id if it is sane, else a fresh one; echoed in the response."""
    given = req.get_header("X-Request-Id")
    request_id = given if given and _CLIENT_REQUEST_ID.match(given) else secrets.token_hex(8)
    resp.set_header("X-Request-Id", request_id)
    return request_id


def store_from_env() -> AsyncClient:
    """The per-worker client; it connects lazily inside the worker's loop."""
    endpoint = os.environ.get("STORAGE_ENDPOINT")
    if not endpoint:
        raise RuntimeError("STORAGE_ENDPOINT is not set (grades replica sets it)")
    return AsyncClient(endpoint, STORE_TIMEOUT_S)
