"""grades' HTTP workers: one app per port, each request routed by the port it came in on.

A replica runs one gunicorn bound to both of its ports (``grades replica`` starts it
with ``web.grades.app:get_app()``); every worker serves both. A request goes to the
setter app (POST /set) when it arrived on SETTER_PORT and to the getter app (GET /get,
/backup, probes, metrics) otherwise, so a set is never taken on the getter port nor a
read on the setter port, as when each port had its own server. Both apps share the
worker's one client of the storage actor.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from actors.runtime.logs import setup_logging
from web.common.app import App
from web.common.metrics import request_metrics
from web.grades import getter, setter
from web.grades.metrics import SERVICE
from web.grades.storage_client import bus_from_env, store_from_env

__all__ = ["PortRouter", "create_app", "get_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class PortRouter:
    """An ASGI app handing each request to the app of its server port, ``other`` otherwise.

    The lifespan protocol is answered here: the grades apps keep nothing to open at
    startup or close at shutdown (their storage client connects lazily in the worker).
    """

    def __init__(self, by_port: Mapping[int, App], other: App) -> None:
        self.by_port = dict(by_port)
        self.other = other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        server = scope.get("server")
        app = self.by_port.get(server[1], self.other) if server else self.other
        await app(scope, receive, send)  # type: ignore[arg-type]  # falcon's own ASGI types

    @staticmethod
    async def _lifespan(receive: Receive, send: Send) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_app(setter_app: App, getter_app: App, setter_port: int) -> PortRouter:
    """Sets on ``setter_port`` only; everything else to the getter app."""
    return PortRouter({setter_port: setter_app}, getter_app)


def get_app() -> PortRouter:
    setup_logging("http")
    user, password = os.environ.get("GRADES_USER"), os.environ.get("GRADES_PASSWORD")
    if not user or not password:
        raise RuntimeError("GRADES_USER and GRADES_PASSWORD must be set for the setter port")
    setter_port = os.environ.get("SETTER_PORT", "")
    if not setter_port.isdigit():
        raise RuntimeError("SETTER_PORT is not set (grades replica sets it)")
    store = store_from_env()
    return create_app(
        setter.create_app(
            store, setter.BasicAuth(user, password), request_metrics(SERVICE, "setter")
        ),
        getter.create_app(store, bus_from_env(), request_metrics(SERVICE, "getter")),
        int(setter_port),
    )
