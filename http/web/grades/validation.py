"""Parsing and checking a /set body: strict JSON, errors that name the field.

Rules: a JSON object; ``user_id`` a non-empty string of at most 128 UTF-8
bytes; the four fields optional, each an integer in the signed 64-bit range
(not a float, string, bool or null); no other field; no field twice. A field
that is absent is None in the result: the store keeps its value.
"""

from __future__ import annotations

import json
import re
from typing import Annotated

import msgspec

from actors.grades.records import FIELDS, INT64_MAX, INT64_MIN, MAX_KEY_BYTES

__all__ = ["InvalidBody", "parse_set_body", "check_user_id"]

Int64 = Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]
_UNSET = msgspec.UNSET


class SetBody(msgspec.Struct, forbid_unknown_fields=True):
    user_id: str
    postpaid_limit: Int64 | msgspec.UnsetType = _UNSET
    spp: Int64 | msgspec.UnsetType = _UNSET
    shipping_fee: Int64 | msgspec.UnsetType = _UNSET
    return_fee: Int64 | msgspec.UnsetType = _UNSET


_decoder = msgspec.json.Decoder(SetBody)
_KEY_END = re.compile(rb'"\s*:')
"""Ends of keys (and of the odd string value that contains a quote and a colon)."""
_AT_FIELD = re.compile(r"^(.*) - at `\$\.(\w+)`$")


class InvalidBody(ValueError):
    """A 400: the message says what is wrong and names the field."""


def check_user_id(user_id: str) -> str:
    if not user_id:
        raise InvalidBody("user_id: must not be empty")
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidBody(f"user_id: longer than {MAX_KEY_BYTES} bytes")
    return user_id


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    match = _AT_FIELD.match(text)
    if match:
        problem, field = match.groups()
        return f"{field}: {problem[0].lower()}{problem[1:].replace('`', '')}"
    if text.startswith("Object missing required field"):
        return "user_id: required"
    if text.startswith("Object contains unknown field"):
        name = text.rsplit("`", 2)[-2] if text.count("`") >= 2 else "?"
        return f"{name}: unknown field (allowed: user_id, {', '.join(FIELDS)})"
    if text.startswith("Expected `object`"):
        return "body: " + text.replace("`", "").replace("Expected", "expected a JSON")
    return f"body: {text}"


def _no_duplicates(pairs: list) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidBody(f"{key}: given more than once")
        seen[key] = value
    return seen


def parse_set_body(body: bytes) -> tuple[str, list]:
    """Check a /set body.

    Returns:
        (user_id, values): values in FIELDS order, None where absent.

    Raises:
        InvalidBody: with a message naming the field.
    """
    try:
        parsed = _decoder.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidBody(_explain(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidBody(f"body: {exc}") from None
    except UnicodeDecodeError:
        raise InvalidBody("body: not valid UTF-8") from None
    values = [parsed.postpaid_limit, parsed.spp, parsed.shipping_fee, parsed.return_fee]
    present = 1 + sum(v is not _UNSET for v in values)
    if len(_KEY_END.findall(body)) != present:
        # NOTE: more key ends than distinct keys: a key given twice, or a value that
        # merely looks like one; only then pay for the full parse that can tell.
        json.loads(body, object_pairs_hook=_no_duplicates)
    return check_user_id(parsed.user_id), [None if v is _UNSET else v for v in values]
