"""The setter port: POST /set (and /set/), behind HTTP Basic auth.

Served on SETTER_PORT by the replica's gunicorn (web.grades.app routes to it).
Credentials come from GRADES_USER and GRADES_PASSWORD; ``get_app()`` refuses to
start without them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import time

import falcon
import falcon.asgi

from actors.grades.messages import Set
from actors.runtime.client import AsyncClient, RemoteError
from actors.runtime.protocol import ErrorCode
from web.common.app import App, Middleware, add_spec, base_app
from web.common.requests import read_json_body, request_id_for
from web.grades.openapi import setter_spec
from web.grades.storage_client import STORE_TIMEOUT_S, record_json
from web.grades.validation import parse_set_body

__all__ = ["BasicAuth", "SetResource", "create_app", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 4096
"""Bytes of a /set body (413 beyond): a record is a few hundred bytes."""
REALM = 'Basic realm="grades", charset="UTF-8"'
log = logging.getLogger("setter")


class BasicAuth:
    """Checks the Authorization header in constant time.

    The whole ``user:password`` is compared at once, so a wrong user and a
    wrong password take the same path and get the same answer.
    """

    def __init__(self, user: str, password: str):
        self._expected = f"{user}:{password}".encode()

    def check(self, req: falcon.asgi.Request) -> None:
        header = req.get_header("Authorization") or ""
        scheme, _, token = header.partition(" ")
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            given = b""
        if scheme.lower() != "basic" or not hmac.compare_digest(given, self._expected):
            raise falcon.HTTPUnauthorized(
                description="missing or wrong credentials", challenges=[REALM]
            )


class SetResource:
    def __init__(self, store: AsyncClient, auth: BasicAuth):
        self.store = store
        self.auth = auth

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        self.auth.check(req)
        user_id, values = parse_set_body(await read_json_body(req, MAX_BODY_BYTES))
        request_id = request_id_for(req, resp)
        deadline_ms = int((time.time() + STORE_TIMEOUT_S) * 1000)
        message = Set(user_id, values, deadline_ms, request_id)
        try:
            row = await self.store.call(message)
        except RemoteError as exc:
            if exc.code != ErrorCode.UNAVAILABLE:
                log.warning("set %s of user %r: %s", request_id, user_id, exc)
            raise
        resp.data = record_json(row)
        resp.content_type = falcon.MEDIA_JSON


def create_app(
    store: AsyncClient, auth: BasicAuth, middleware: list[Middleware] | None = None
) -> App:
    app = base_app(middleware)
    app.add_route("/set", SetResource(store, auth))
    add_spec(app, setter_spec(MAX_BODY_BYTES))
    return app
