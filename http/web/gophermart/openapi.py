"""The OpenAPI 3 document of gophermart, served at GET /openapi.json.

It describes what resources.py and validation.py do (seed 003's routes and statuses);
tests/gophermart/test_app_fuzz.py runs schemathesis against it: keep them in step.
"""

from __future__ import annotations

from web.gophermart.validation import MAX_CREDENTIAL_BYTES, MAX_JSON_BYTES, MAX_ORDER_BYTES

__all__ = ["SPEC"]

_NUMBER = {
    "type": "string",
    "pattern": "^[0-9]{1,64}$",
    "example": "12345678903",
    "description": "Order number: digits passing the Luhn check.",
}
_AMOUNT = {
    "type": "number",
    "minimum": 0,
    "example": 729.98,
    "description": "Loyalty points: a JSON number with at most two decimals.",
}
_TIME = {"type": "string", "format": "date-time", "example": "2020-12-10T15:15:45+00:00"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(description, _ref("Error"))


_AUTH = [{"bearer": []}, {"cookie": []}]
_401 = _error("No valid token in the Authorization header or the token cookie.")
_413 = "Body over {} bytes. Nothing changed."
_503 = _error("The database does not answer; retry after Retry-After seconds.")
_SIGNED_IN = {
    "description": "Signed in: the token is in the Authorization header (Bearer) and in "
    "the HttpOnly cookie `token`.",
    "headers": {
        "Authorization": {"schema": {"type": "string"}},
        "Set-Cookie": {"schema": {"type": "string"}},
    },
    "content": {"application/json": {"schema": _ref("SignedIn")}},
}
_CREDENTIALS_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _ref("Credentials")}},
}
_BAD_CREDENTIALS = _error(
    "Malformed JSON, missing or unknown field, wrong type, an empty "
    f"or over-{MAX_CREDENTIAL_BYTES}-byte login or password."
)

_PATHS = {
    "/api/user/register": {
        "post": {
            "operationId": "register",
            "summary": "Register and sign in.",
            "requestBody": _CREDENTIALS_BODY,
            "responses": {
                "200": _SIGNED_IN,
                "400": _BAD_CREDENTIALS,
                "409": _error("The login is taken."),
                "413": _error(_413.format(MAX_JSON_BYTES)),
                "503": _503,
            },
        }
    },
    "/api/user/login": {
        "post": {
            "operationId": "login",
            "summary": "Sign in.",
            "requestBody": _CREDENTIALS_BODY,
            "responses": {
                "200": _SIGNED_IN,
                "400": _BAD_CREDENTIALS,
                "401": _error("No user with this login and password."),
                "413": _error(_413.format(MAX_JSON_BYTES)),
                "503": _503,
            },
        }
    },
    "/api/user/orders": {
        "post": {
            "operationId": "uploadOrder",
            "security": _AUTH,
            "summary": "Upload an order number for the accrual system to reward.",
            "requestBody": {
                "required": True,
                "content": {"text/plain": {"schema": {"type": "string", "example": "12345678903"}}},
            },
            "responses": {
                "200": _json("This user uploaded it before.", _ref("Uploaded")),
                "202": _json("New: accepted with status NEW.", _ref("Uploaded")),
                "400": _error("Empty, or not digits."),
                "401": _401,
                "409": _error("Another user uploaded it."),
                "413": _error(_413.format(MAX_ORDER_BYTES)),
                "422": _error("Digits failing the Luhn check, or more than 64."),
                "503": _503,
            },
        },
        "get": {
            "operationId": "listOrders",
            "security": _AUTH,
            "summary": "The user's orders, oldest upload first.",
            "responses": {
                "200": _json("Orders.", {"type": "array", "items": _ref("Order")}),
                "204": {"description": "No orders."},
                "401": _401,
                "503": _503,
            },
        },
    },
    "/api/user/balance": {
        "get": {
            "operationId": "balance",
            "security": _AUTH,
            "summary": "Current and withdrawn points.",
            "responses": {"200": _json("The balance.", _ref("Balance")), "401": _401, "503": _503},
        }
    },
    "/api/user/balance/withdraw": {
        "post": {
            "operationId": "withdraw",
            "security": _AUTH,
            "summary": "Spend points against a new order number.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("WithdrawRequest")}},
            },
            "responses": {
                "200": _json("Withdrawn.", _ref("Withdrawn")),
                "400": _error(
                    "Malformed JSON, missing or unknown field, wrong type, a sum that "
                    "is not positive or has more than two decimals."
                ),
                "401": _401,
                "402": _error("More than the current balance."),
                "409": _error("A withdrawal against this order number exists."),
                "413": _error(_413.format(MAX_JSON_BYTES)),
                "422": _error("The order number is not digits passing the Luhn check."),
                "503": _503,
            },
        }
    },
    "/api/user/withdrawals": {
        "get": {
            "operationId": "listWithdrawals",
            "security": _AUTH,
            "summary": "The user's withdrawals, oldest first.",
            "responses": {
                "200": _json("Withdrawals.", {"type": "array", "items": _ref("Withdrawal")}),
                "204": {"description": "No withdrawals."},
                "401": _401,
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

_STRING = {"type": "string", "minLength": 1}
_SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
    "Credentials": {
        "type": "object",
        "required": ["login", "password"],
        "additionalProperties": False,
        "properties": {
            "login": {**_STRING, "example": "alice"},
            "password": {**_STRING, "example": "secret-42"},
        },
    },
    "SignedIn": {
        "type": "object",
        "required": ["login"],
        "properties": {"login": {"type": "string"}},
    },
    "Uploaded": {
        "type": "object",
        "required": ["number"],
        "properties": {
            "number": _NUMBER,
            "status": {"type": "string"},
            "message": {"type": "string"},
        },
    },
    "Order": {
        "type": "object",
        "required": ["number", "status", "uploaded_at"],
        "properties": {
            "number": _NUMBER,
            "status": {"type": "string", "enum": ["NEW", "PROCESSING", "INVALID", "PROCESSED"]},
            "accrual": {**_AMOUNT, "description": "Only when PROCESSED."},
            "uploaded_at": _TIME,
        },
    },
    "Balance": {
        "type": "object",
        "required": ["current", "withdrawn"],
        "properties": {"current": _AMOUNT, "withdrawn": _AMOUNT},
    },
    "WithdrawRequest": {
        "type": "object",
        "required": ["order", "sum"],
        "additionalProperties": False,
        "properties": {"order": _NUMBER, "sum": {**_AMOUNT, "minimum": 0.01}},
    },
    "Withdrawn": {
        "type": "object",
        "required": ["order", "sum", "current", "withdrawn"],
        "properties": {"order": _NUMBER, "sum": _AMOUNT, "current": _AMOUNT, "withdrawn": _AMOUNT},
    },
    "Withdrawal": {
        "type": "object",
        "required": ["order", "sum", "processed_at"],
        "properties": {"order": _NUMBER, "sum": _AMOUNT, "processed_at": _TIME},
    },
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "gophermart",
        "version": "1.0.0",
        "description": "The Gophermart loyalty service (seed 003). Errors are JSON "
        '{"error": "..."} naming what is wrong.',
    },
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            "cookie": {"type": "apiKey", "in": "cookie", "name": "token"},
        },
    },
}
