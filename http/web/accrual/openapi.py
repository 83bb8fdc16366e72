"""The OpenAPI 3 document of accrual, served at GET /openapi.json.

Built with web.common.openapi. The bodies are checked by code (exact numbers, no
coercion), not by a typed Struct, so their schemas are written here; they describe
what resources.py and validation.py do, and tests/gophermart/test_process_fuzz.py runs
schemathesis against the document: keep them in step.
"""

from __future__ import annotations

from web.accrual.validation import MAX_BODY_BYTES, MAX_GOODS
from web.common.openapi import (
    Schema,
    database_probe_paths,
    database_unavailable,
    document,
    error_response,
    json_response,
    operation,
    path_parameter,
    ref,
)

__all__ = ["SPEC"]

_NUMBER: Schema = {"type": "string", "pattern": "^[0-9]{1,64}$", "example": "12345678903"}
_AMOUNT: Schema = {"type": "number", "minimum": 0, "example": 729.98}

_503 = database_unavailable()

_SCHEMAS: dict[str, Schema] = {
    "Rule": {
        "type": "object",
        "required": ["match", "reward", "reward_type"],
        "additionalProperties": False,
        "properties": {
            "match": {"type": "string", "minLength": 1, "example": "Bork"},
            "reward": {**_AMOUNT, "minimum": 0.01, "example": 5},
            "reward_type": {"type": "string", "enum": ["%", "pt"]},
        },
    },
    "Good": {
        "type": "object",
        "required": ["description", "price"],
        "additionalProperties": False,
        "properties": {
            "description": {"type": "string", "example": "Чайник Bork"},
            "price": _AMOUNT,
        },
    },
    "NewOrder": {
        "type": "object",
        "required": ["order", "goods"],
        "additionalProperties": False,
        "properties": {
            "order": _NUMBER,
            "goods": {"type": "array", "minItems": 1, "maxItems": MAX_GOODS, "items": ref("Good")},
        },
    },
    "Registered": {
        "type": "object",
        "required": ["order", "status"],
        "properties": {"order": _NUMBER, "status": {"type": "string"}},
    },
    "Accrual": {
        "type": "object",
        "required": ["order", "status"],
        "properties": {
            "order": _NUMBER,
            "status": {
                "type": "string",
                "enum": ["REGISTERED", "PROCESSING", "INVALID", "PROCESSED"],
            },
            "accrual": {**_AMOUNT, "description": "Only when PROCESSED."},
        },
    },
}

_PATHS: Schema = {
    "/api/goods": {
        "post": operation(
            "addRule",
            "Register a reward rule.",
            {
                200: json_response("Registered.", ref("Rule")),
                400: error_response(
                    "Malformed JSON, missing or unknown field, wrong type, a number out "
                    "of range, empty match, reward not positive or over 100%."
                ),
                409: error_response("A rule with this match exists."),
                503: _503,
            },
            request=ref("Rule"),
            json_body_limit=MAX_BODY_BYTES,
        )
    },
    "/api/orders": {
        "post": operation(
            "registerOrder",
            "Register an order for calculation.",
            {
                202: json_response("Registered.", ref("Registered")),
                400: error_response(
                    "Malformed JSON, missing or unknown field, wrong type, a number out "
                    "of range, an order number failing Luhn, a bad price."
                ),
                409: error_response("The order is registered already."),
                503: _503,
            },
            request=ref("NewOrder"),
            json_body_limit=MAX_BODY_BYTES,
        )
    },
    "/api/orders/{number}": {
        "get": operation(
            "getOrder",
            "The calculation of an order.",
            {
                200: json_response("The calculation so far.", ref("Accrual")),
                204: {"description": "The order is not registered."},
                400: error_response("The number is not 1 to 64 digits."),
                429: json_response(
                    "Over ACCRUAL_RATE_LIMIT requests this minute.",
                    {"type": "string"},
                    {"Retry-After": {"schema": {"type": "integer"}}},
                    media_type="text/plain",
                ),
                503: _503,
            },
            parameters=[path_parameter("number", _NUMBER)],
        )
    },
    **database_probe_paths(),
}

SPEC = document(
    "accrual",
    "The accrual system of the Gophermart course, a development double. Errors are JSON "
    '{"error": "..."} naming what is wrong, except the 429\'s text body.',
    _PATHS,
    [],
    schemas=_SCHEMAS,
    list_spec=False,
)
