"""What every request handler reads the same way: its id, its Content-Type, its body.

Bodies are bounded: a Content-Length over the route's limit is refused (413)
before a byte is read, and a chunked body is read to at most limit + 1 bytes,
so a client cannot make a worker hold more than the limit. JSON routes take a
missing Content-Type as JSON (curl without -H, the course's clients), any
``application/json`` or ``*/*+json`` type with any parameters, and refuse any
other type with 415.
"""

from __future__ import annotations

import itertools
import re
import secrets

import falcon
import falcon.asgi

from web.common.pid import current_pid

__all__ = ["read_body", "read_json_body", "require_json_content_type", "request_id_for"]

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_prefix: tuple[int, str] | None = None  # (pid, random prefix): a forked worker makes its own
_counter = itertools.count(1)


def _fresh_id() -> str:
    """Random per process, then counted: unique without a urandom syscall per request."""
    global _prefix
    pid = current_pid()
    if _prefix is None or _prefix[0] != pid:
        _prefix = (pid, secrets.token_hex(5))
    return f"{_prefix[1]}{next(_counter):06x}"


def request_id_for(req: falcon.asgi.Request, resp: falcon.asgi.Response) -> str:
    """The client's X-Request-Id if it is sane, else a fresh one; echoed in the response."""
    given = req.get_header("X-Request-Id")
    request_id = given if given and _CLIENT_REQUEST_ID.fullmatch(given) else _fresh_id()
    resp.set_header("X-Request-Id", request_id)
    return request_id


def _too_large(limit: int) -> falcon.HTTPContentTooLarge:
    return falcon.HTTPContentTooLarge(description=f"body: larger than {limit} bytes")


async def read_body(req: falcon.asgi.Request, limit: int) -> bytes:
    """The whole body; 413 past ``limit`` bytes (before reading when Content-Length says so)."""
    if req.content_length is not None and req.content_length > limit:
        raise _too_large(limit)
    body: bytes = await req.stream.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def require_json_content_type(req: falcon.asgi.Request) -> None:
    """415 unless the Content-Type is absent, empty, application/json or */*+json."""
    given = (req.content_type or "").strip(" \t")
    if not given:
        return
    media_type = given.split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise falcon.HTTPUnsupportedMediaType(
            description=f"Content-Type: expected application/json, got {media_type or given}"
        )


async def read_json_body(req: falcon.asgi.Request, limit: int) -> bytes:
    """The body of a JSON route: its Content-Type checked (415), then read bounded (413)."""
    require_json_content_type(req)
    return await read_body(req, limit)
