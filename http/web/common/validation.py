"""The one input error and the one way to decode a JSON body into a request type.

Every rejected input is an ``InvalidInput`` (400, mapped in ``base_app``) whose
message starts with the field it is about (``goods[0].price: number out of
range``) or ``body:`` when the body as a whole is wrong. ``decode_json`` turns
msgspec's errors into such messages, so every service words them alike.
"""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

__all__ = ["InvalidInput", "check_text", "decode_json", "explain", "json_type"]

T = TypeVar("T")

_AT_PATH = re.compile(r"^(.*) - at `\$\.?(.*)`$", re.DOTALL)
_FIELD = re.compile(r"`([^`]*)`")


class InvalidInput(ValueError):
    """400: the message names the field (or ``body``) and says what is wrong."""


def _struct_fields(type_: object) -> tuple[str, ...]:
    fields: tuple[str, ...] = getattr(type_, "__struct_encode_fields__", ())
    return fields


def explain(exc: msgspec.ValidationError, type_: object = None) -> str:
    """A ValidationError as ``<field>: <what is wrong>``.

    ``type_`` is the Struct decoded at the root: an unknown field there is
    answered with the fields it allows.
    """
    text = str(exc)
    match = _AT_PATH.match(text)
    problem, path = match.groups() if match else (text, "")
    path = path.replace("[...]", "")
    named = _FIELD.search(problem)
    if problem.startswith("Object missing required field") and named:
        return f"{_join(path, named.group(1))}: required"
    if problem.startswith("Object contains unknown field") and named:
        allowed = _struct_fields(type_) if not path else ()
        listed = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{_join(path, named.group(1))}: unknown field{listed}"
    problem = problem.replace("`", "")
    if "out of range" in problem and "Expected" not in problem:
        problem = "number out of range"
    if not path:
        return "body: " + problem.replace("Expected", "expected a JSON", 1)
    return f"{path}: {problem[:1].lower()}{problem[1:]}"


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def decode_json(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """The body decoded by ``decoder`` (whose type is a Struct with
    forbid_unknown_fields), or InvalidInput naming the field."""
    if not body.strip():
        raise InvalidInput("body: empty; expected a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidInput(explain(exc, decoder.type)) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"body: malformed JSON or not UTF-8 ({exc})") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"body: malformed JSON or not UTF-8 ({exc})") from None


def json_type(value: object) -> str:
    """How a decoded JSON value is named in a message: "a string", "null", ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a number"


def check_text(value: object, name: str, max_bytes: int, *, allow_empty: bool = False) -> str:
    """A JSON string of at most ``max_bytes`` UTF-8 bytes (and not empty, unless allowed)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{name}: expected a string, got {json_type(value)}")
    if not value and not allow_empty:
        raise InvalidInput(f"{name}: empty")
    if len(value.encode("utf-8", "surrogatepass")) > max_bytes:
        raise InvalidInput(f"{name}: longer than {max_bytes} bytes")
    return value
