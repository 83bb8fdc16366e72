"""The OpenAPI 3 document of accrual, served at GET /openapi.json.

It describes what app.py and validation.py do; tests/accrual/test_app.py runs
schemathesis against it: keep them in step.
"""

from __future__ import annotations

from web.accrual.validation import MAX_BODY_BYTES, MAX_GOODS

__all__ = ["SPEC"]

_NUMBER = {"type": "string", "pattern": "^[0-9]{1,64}$", "example": "12345678903"}
_AMOUNT = {"type": "number", "minimum": 0, "example": 729.98}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(description, _ref("Error"))


_413 = _error(f"Body over {MAX_BODY_BYTES} bytes. Nothing changed.")
_503 = _error("The database does not answer; retry after Retry-After seconds.")

_PATHS = {
    "/api/goods": {
        "post": {
            "operationId": "addRule",
            "summary": "Register a reward rule.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Rule")}},
            },
            "responses": {
                "200": _json("Registered.", _ref("Rule")),
                "400": _error(
                    "Malformed JSON, missing or unknown field, wrong type, "
                    "empty match, reward not positive or over 100%."
                ),
                "409": _error("A rule with this match exists."),
                "413": _413,
                "503": _503,
            },
        }
    },
    "/api/orders": {
        "post": {
            "operationId": "registerOrder",
            "summary": "Register an order for calculation.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewOrder")}},
            },
            "responses": {
                "202": _json("Registered.", _ref("Registered")),
                "400": _error(
                    "Malformed JSON, missing or unknown field, wrong type, "
                    "an order number failing Luhn, a bad price."
                ),
                "409": _error("The order is registered already."),
                "413": _413,
                "503": _503,
            },
        }
    },
    "/api/orders/{number}": {
        "get": {
            "operationId": "getOrder",
            "summary": "The calculation of an order.",
            "parameters": [{"name": "number", "in": "path", "required": True, "schema": _NUMBER}],
            "responses": {
                "200": _json("The calculation so far.", _ref("Accrual")),
                "204": {"description": "The order is not registered."},
                "400": _error("The number is not 1 to 64 digits."),
                "429": {
                    "description": "Over ACCRUAL_RATE_LIMIT requests this minute.",
                    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                "503": _503,
            },
        }
    },
    "/healthz": {
        "get": {
            "operationId": "health",
            "summary": "Liveness.",
            "responses": {"200": {"description": "Alive."}},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "ready",
            "summary": "Readiness: the database answers.",
            "responses": {
                "200": {"description": "Ready."},
                "503": {"description": "The database does not answer."},
            },
        }
    },
}

_SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
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
            "goods": {"type": "array", "minItems": 1, "maxItems": MAX_GOODS, "items": _ref("Good")},
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

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "accrual",
        "version": "1.0.0",
        "description": "The accrual system of the Gophermart course, a development "
        'double. Errors are JSON {"error": "..."} naming what is '
        "wrong, except the 429's text body.",
    },
    "paths": _PATHS,
    "components": {"schemas": _SCHEMAS},
}
