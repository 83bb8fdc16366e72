"""Parsing and checking a /set body: strict JSON, errors that name the field.

Rules: a JSON object; ``user_id`` a non-empty string of at most 128 UTF-8
bytes; the four fields optional, each an integer in the signed 64-bit range
(not a float, string, bool or null); no other field; no field twice. A field
that is absent is None in the result: the store keeps its value.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

import msgspec

from actors.grades.records import INT64_MAX, INT64_MIN, MAX_KEY_BYTES
from web.common.validation import InvalidInput, decode_json

__all__ = ["Int64", "SetRequest", "UserId", "parse_set_body", "check_user_id"]

Int64 = Annotated[
    int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX, extra_json_schema={"format": "int64"})
]
UserId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_KEY_BYTES,
        description=f"Non-empty, at most {MAX_KEY_BYTES} bytes once UTF-8 encoded (maxLength "
        "counts characters, so a shorter string of multi-byte characters can still "
        "be refused with 400).",
    ),
]
_UNSET = msgspec.UNSET


class SetRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A set: user_id and any subset of the four fields (an absent field keeps its value)."""

    user_id: UserId
    postpaid_limit: Int64 | msgspec.UnsetType = _UNSET
    spp: Int64 | msgspec.UnsetType = _UNSET
    shipping_fee: Int64 | msgspec.UnsetType = _UNSET
    return_fee: Int64 | msgspec.UnsetType = _UNSET


_decoder = msgspec.json.Decoder(SetRequest)
_KEY_END = re.compile(rb'"\s*:')
"""Ends of keys (and of the odd string value that contains a quote and a colon)."""


def check_user_id(user_id: str) -> str:
    if not user_id:
        raise InvalidInput("user_id: must not be empty")
    if len(user_id.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidInput(f"user_id: longer than {MAX_KEY_BYTES} bytes")
    return user_id


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise InvalidInput(f"{key}: given more than once")
        seen[key] = value
    return seen


def parse_set_body(body: bytes) -> tuple[str, list[int | None]]:
    """Check a /set body.

    Returns:
        (user_id, values): values in FIELDS order, None where absent.

    Raises:
        InvalidInput: with a message naming the field.
    """
    parsed = decode_json(body, _decoder)
    values = [parsed.postpaid_limit, parsed.spp, parsed.shipping_fee, parsed.return_fee]
    present = 1 + sum(v is not _UNSET for v in values)
    if len(_KEY_END.findall(body)) != present:
        # NOTE: more key ends than distinct keys: a key given twice, or a value that
        # merely looks like one; only then pay for the full parse that can tell.
        json.loads(body, object_pairs_hook=_no_duplicates)
    return check_user_id(parsed.user_id), [None if v is _UNSET else v for v in values]
