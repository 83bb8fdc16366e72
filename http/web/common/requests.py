"""Request ids: one per HTTP request, named in every log line about it."""

from __future__ import annotations

import itertools
import os
import re
import secrets

__all__ = ["request_id_for"]

_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_prefix: tuple[int, str] | None = None  # (pid, random prefix): a forked worker makes its own
_counter = itertools.count(1)


def _fresh_id() -> str:
    """Random per process, then counted: unique without a urandom syscall per request."""
    global _prefix
    if _prefix is None or _prefix[0] != os.getpid():
        _prefix = (os.getpid(), secrets.token_hex(5))
    return f"{_prefix[1]}{next(_counter):06x}"


def request_id_for(req, resp) -> str:
    """The client's X-Request-Id if it is sane, else a fresh one; echoed in the response."""
    given = req.get_header("X-Request-Id")
    request_id = given if given and _CLIENT_REQUEST_ID.fullmatch(given) else _fresh_id()
    resp.set_header("X-Request-Id", request_id)
    return request_id
