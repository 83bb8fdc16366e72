"""The setter port: POST /set (and /set/), behind HTTP Basic auth.

Run as ``gunicorn -k web.common.worker.Worker --pythonpath http 'web.grades.setter:get_app()'``;
``grades replica`` does that. Credentials come from GRADES_USER and
GRADES_PASSWORD; the app refuses to start without them.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import os
import time

import falcon
import falcon.asgi

from actors.grades.messages import Set
from actors.runtime.client import AsyncClient, RemoteError
from actors.runtime.logs import setup_logging
from actors.runtime.protocol import ErrorCode
from web.common.app import SpecResource, base_app
from web.common.metrics import RequestMetrics, metrics_enabled
from web.common.requests import request_id_for
from web.grades.openapi import setter_spec
from web.grades.storage_client import STORE_TIMEOUT_S, record_json, store_from_env
from web.grades.validation import InvalidBody, parse_set_body

__all__ = ["BasicAuth", "SetResource", "create_app", "get_app", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 4096
"""A record is a few hundred bytes; anything larger is refused with 413."""
REALM = 'Basic realm="grades", charset="UTF-8"'
log = logging.getLogger("setter")


class BasicAuth:
    """Checks the Authorization header in constant time.

    The whole ``user:password`` is compared at once, so a wrong user and a
    wrong password take the same path and get the same answer.
    """

    def __init__(self, user: str, password: str):
        self._expected = f"{user}:{password}".encode()

    def check(self, req) -> None:
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

    async def on_post(self, req, resp):
        self.auth.check(req)
        media_type = (req.content_type or "application/json").split(";")[0].strip().lower()
        if media_type != "application/json" and not media_type.endswith("+json"):
            raise falcon.HTTPUnsupportedMediaType(
                description=f"Content-Type: expected application/json, got {media_type}"
            )
        if req.content_length is not None and req.content_length > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(
                description=f"body: larger than {MAX_BODY_BYTES} bytes"
            )
        body = await req.stream.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise falcon.HTTPContentTooLarge(
                description=f"body: larger than {MAX_BODY_BYTES} bytes"
            )
        try:
            user_id, values = parse_set_body(body)
        except InvalidBody as exc:
            raise falcon.HTTPBadRequest(description=str(exc)) from None
        request_id = request_id_for(req, resp)
        deadline_ms = int((time.time() + STORE_TIMEOUT_S) * 1000)
        try:
            row = await self.store.call(Set(user_id, values, deadline_ms, request_id))
        except RemoteError as exc:
            if exc.code != ErrorCode.UNAVAILABLE:
                log.warning("set %s of user %r: %s", request_id, user_id, exc)
            raise
        resp.data = record_json(row)
        resp.content_type = falcon.MEDIA_JSON


def create_app(
    store: AsyncClient, auth: BasicAuth, middleware: list | None = None
) -> falcon.asgi.App:
    app = base_app(middleware)
    app.add_route("/set", SetResource(store, auth))
    app.add_route("/openapi.json", SpecResource(setter_spec(MAX_BODY_BYTES)))
    return app


def get_app() -> falcon.asgi.App:
    setup_logging("setter")
    user, password = os.environ.get("GRADES_USER"), os.environ.get("GRADES_PASSWORD")
    if not user or not password:
        raise RuntimeError("GRADES_USER and GRADES_PASSWORD must be set for the setter port")
    middleware = [RequestMetrics("grades", "setter")] if metrics_enabled() else []
    return create_app(store_from_env(), BasicAuth(user, password), middleware)
