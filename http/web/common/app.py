"""The base of every service's Falcon app: JSON errors, probes, the HTTP-version guard.

A service's ``create_app(...)`` starts from ``base_app(...)`` and adds its
routes; ``get_app()`` only reads the environment and calls ``create_app``.
"""

from __future__ import annotations

import falcon
import falcon.asgi

from actors.runtime.client import RemoteError
from web.common.errors import json_body, not_found_sink, remote_error_handler, serialize_error

__all__ = ["base_app", "HealthResource", "ReadyResource", "SpecResource"]

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
            body = json_body({"error": f"HTTP/{version}: unsupported HTTP version"})
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await super().__call__(scope, receive, send)


def base_app(middleware: list | None = None) -> falcon.asgi.App:
    """An ASGI app whose every error, 404 and 405 included, is JSON."""
    app = _App(middleware=middleware or [])
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_error)
    app.add_error_handler(RemoteError, remote_error_handler)
    app.add_sink(not_found_sink)
    return app


class HealthResource:
    """GET /healthz: the process answers (liveness, not readiness)."""

    async def on_get(self, req, resp):
        resp.data = json_body({"status": "alive"})
        resp.content_type = falcon.MEDIA_JSON


class ReadyResource:
    """GET /readyz: 200 when ``check()`` says ready, else 503 with Retry-After.

    ``check`` is an async callable returning ``(ready, details)``; details go
    into the body so an operator sees why.
    """

    def __init__(self, check):
        self.check = check

    async def on_get(self, req, resp):
        ready, details = await self.check()
        resp.status = falcon.HTTP_200 if ready else falcon.HTTP_503
        if not ready:
            resp.set_header("Retry-After", "1")
        resp.data = json_body({"ready": ready, **details})
        resp.content_type = falcon.MEDIA_JSON


class SpecResource:
    """GET /openapi.json: the app's document, encoded once."""

    def __init__(self, spec: dict):
        self._body = json_body(spec)

    async def on_get(self, req, resp):
        resp.data = self._body
        resp.content_type = falcon.MEDIA_JSON
