"""The base of every service's Falcon app: JSON errors, probes, the HTTP-version guard.

A service's ``create_app(...)`` starts from ``base_app(...)``, maps its own errors
with one ``map_errors`` table and adds its routes; ``get_app()`` only reads the
environment and calls ``create_app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import falcon
import falcon.asgi

from actors.runtime.client import RemoteError
from web.common.docs import add_docs
from web.common.errors import map_errors, not_found_sink, remote_error_handler, serialize_error
from web.common.metrics import Collect, MetricsResource
from web.common.openapi import SPEC_PATH
from web.common.responses import json_body, send_json
from web.common.validation import InvalidInput

__all__ = [
    "App",
    "CloseOnShutdown",
    "Middleware",
    "add_probes",
    "add_spec",
    "base_app",
    "HealthResource",
    "ReadyResource",
    "ReadyCheck",
    "SpecResource",
]

App = falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]
Middleware = Any
"""A falcon middleware object (falcon names its protocols only in the private
falcon._typing): RequestMetrics, a service's lifespan closer."""

_HTTP_VERSIONS = frozenset({"1.0", "1.1", "2", "3"})
"""The scope http_version values falcon's ASGI app accepts."""

ReadyCheck = Callable[[], Awaitable[tuple[bool, dict[str, Any]]]]
"""An async check: (ready, details for the body)."""


class _App(App):
    """Refuses, as a JSON 400, a request line's HTTP version falcon cannot serve.

    uvicorn's HTTP/1 parser lets "HTTP/0.9" and "HTTP/2.0" through (http_version "0.9",
    "2.0"), and falcon raises on them before any of our code runs: a 500 otherwise.
    """

    # falcon's own ASGI __call__ overrides the WSGI one with the same ignore
    async def __call__(  # type: ignore[override]
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Mapping[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
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


def base_app(middleware: list[Middleware] | None = None) -> App:
    """An ASGI app whose every error, 404 and 405 included, is JSON; InvalidInput is 400."""
    app = _App(middleware=middleware or [])
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(serialize_error)
    app.add_error_handler(RemoteError, remote_error_handler)
    map_errors(app, {InvalidInput: (falcon.HTTPBadRequest, None)})
    app.add_sink(not_found_sink)
    return app


class HealthResource:
    """GET /healthz: the process answers (liveness, not readiness)."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        send_json(resp, {"status": "alive"})


class ReadyResource:
    """GET /readyz: 200 when ``check()`` says ready, else 503 with Retry-After.

    ``check`` is an async callable returning ``(ready, details)``; details go
    into the body so an operator sees why.
    """

    def __init__(self, check: ReadyCheck):
        self.check = check

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        ready, details = await self.check()
        if not ready:
            resp.set_header("Retry-After", "1")
        send_json(resp, {"ready": ready, **details}, falcon.HTTP_200 if ready else falcon.HTTP_503)


class SpecResource:
    """GET /openapi.json: the app's document, encoded once."""

    def __init__(self, spec: dict[str, Any]):
        self._body = json_body(spec)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = self._body
        resp.content_type = falcon.MEDIA_JSON


def add_spec(app: App, spec: dict[str, Any]) -> None:
    """GET /openapi.json (``spec``) and GET /docs, the interactive page on it."""
    app.add_route(SPEC_PATH, SpecResource(spec))
    add_docs(app, spec["info"]["title"])


def add_probes(
    app: App, spec: dict[str, Any], ready: ReadyCheck, collect: Collect | None = None
) -> None:
    """The routes every service serves beside its API: /healthz, /readyz (``ready``),
    /metrics (HTTP counts plus ``collect``'s families), its OpenAPI document and /docs."""
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(ready))
    app.add_route("/metrics", MetricsResource(collect))
    add_spec(app, spec)


class CloseOnShutdown:
    """Falcon middleware: when the worker stops, close its clients (``close()``), then
    its database pool (``await pool.close()``, if it has one: a bare connection is the
    caller's)."""

    def __init__(self, pool: object, *clients: Any):
        self.pool = pool
        self.clients = clients

    async def process_shutdown(self, scope: dict[str, Any], event: dict[str, Any]) -> None:
        for client in self.clients:
            client.close()
        close = getattr(self.pool, "close", None)
        if close is not None:
            await close()
