"""The one way a resource answers with JSON."""

from __future__ import annotations

import falcon
import falcon.asgi
import msgspec

__all__ = ["json_body", "send_json"]

_ENCODER = msgspec.json.Encoder(decimal_format="number")
json_body = _ENCODER.encode
"""Bytes of a JSON document (msgspec: fast, exact for ints, a Decimal as a JSON number:
729.98, never "729.98")."""


def send_json(resp: falcon.asgi.Response, value: object, status: str = falcon.HTTP_200) -> None:
    """Answer ``value`` as JSON with ``status``."""
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.data = json_body(value)
