"""Request ids: one per HTTP request, named in every log line about it."""

from __future__ import annotations

import re
import secrets

__all__ = ["request_id_for"]

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def request_id_for(req, resp) -> str:
    """The client's X-Request-Id if it is sane, else a fresh one; echoed in the response."""
    given = req.get_header("X-Request-Id")
    request_id = given if given and _CLIENT_REQUEST_ID.match(given) else secrets.token_hex(8)
    resp.set_header("X-Request-Id", request_id)
    return request_id
