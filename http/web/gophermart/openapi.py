"""The OpenAPI 3 document of gophermart, served at GET /openapi.json.

Built with web.common.openapi. The bodies are checked by code (exact numbers, no
coercion), not by a typed Struct, so their schemas are written here; they describe
what resources.py and validation.py do (seed 003's routes and statuses), and
tests/gophermart/test_process_fuzz.py runs schemathesis against the document: keep
them in step.
"""

from __future__ import annotations

from web.common.openapi import (
    Schema,
    body_limit_response,
    database_probe_paths,
    database_unavailable,
    document,
    error_response,
    json_response,
    operation,
    ref,
)
from web.gophermart.validation import MAX_CREDENTIAL_BYTES, MAX_JSON_BYTES, MAX_ORDER_BYTES

__all__ = ["SPEC"]

_NUMBER: Schema = {
    "type": "string",
    "pattern": "^[0-9]{1,64}$",
    "example": "12345678903",
    "description": "Order number: digits passing the Luhn check.",
}
_AMOUNT: Schema = {
    "type": "number",
    "minimum": 0,
    "example": 729.98,
    "description": "Loyalty points: a JSON number with at most two decimals.",
}
_TIME: Schema = {"type": "string", "format": "date-time", "example": "2020-12-10T15:15:45+00:00"}

_AUTH: list[Schema] = [{"bearer": []}, {"cookie": []}]
_401 = error_response("No valid token in the Authorization header or the token cookie.")
_503 = database_unavailable()
_SIGNED_IN = json_response(
    "Signed in: the token is in the Authorization header (Bearer) and in the HttpOnly "
    "cookie `token`.",
    ref("SignedIn"),
    {
        "Authorization": {"schema": {"type": "string"}},
        "Set-Cookie": {"schema": {"type": "string"}},
    },
)
_BAD_CREDENTIALS = error_response(
    "Malformed JSON, missing or unknown field, wrong type, an empty "
    f"or over-{MAX_CREDENTIAL_BYTES}-byte login or password."
)


def _credentials_operation(operation_id: str, summary: str, refusal: tuple[int, str]) -> Schema:
    status, text = refusal
    return operation(
        operation_id,
        summary,
        {
            200: _SIGNED_IN,
            400: _BAD_CREDENTIALS,
            status: error_response(text),
            503: _503,
        },
        request=ref("Credentials"),
        json_body_limit=MAX_JSON_BYTES,
    )


_PATHS: Schema = {
    "/api/user/register": {
        "post": _credentials_operation(
            "register", "Register and sign in.", (409, "The login is taken.")
        )
    },
    "/api/user/login": {
        "post": _credentials_operation(
            "login", "Sign in.", (401, "No user with this login and password.")
        )
    },
    "/api/user/orders": {
        "post": operation(
            "uploadOrder",
            "Upload an order number for the accrual system to reward.",
            {
                200: json_response("This user uploaded it before.", ref("Uploaded")),
                202: json_response("New: accepted with status NEW.", ref("Uploaded")),
                400: error_response("Empty, or not digits."),
                401: _401,
                409: error_response("Another user uploaded it."),
                413: body_limit_response(MAX_ORDER_BYTES),
                422: error_response("Digits failing the Luhn check, or more than 64."),
                503: _503,
            },
            request={"type": "string", "example": "12345678903"},
            request_media_type="text/plain",
            request_description=f"The order number, at most {MAX_ORDER_BYTES} bytes with "
            "surrounding whitespace.",
            security=_AUTH,
        ),
        "get": operation(
            "listOrders",
            "The user's orders, oldest upload first.",
            {
                200: json_response("Orders.", {"type": "array", "items": ref("Order")}),
                204: {"description": "No orders."},
                401: _401,
                503: _503,
            },
            security=_AUTH,
        ),
    },
    "/api/user/balance": {
        "get": operation(
            "balance",
            "Current and withdrawn points.",
            {200: json_response("The balance.", ref("Balance")), 401: _401, 503: _503},
            security=_AUTH,
        )
    },
    "/api/user/balance/withdraw": {
        "post": operation(
            "withdraw",
            "Spend points against a new order number.",
            {
                200: json_response("Withdrawn.", ref("Withdrawn")),
                400: error_response(
                    "Malformed JSON, missing or unknown field, wrong type, a number out of "
                    "range, a sum that is not positive or has more than two decimals."
                ),
                401: _401,
                402: error_response("More than the current balance."),
                409: error_response("A withdrawal against this order number exists."),
                422: error_response("The order number is not digits passing the Luhn check."),
                503: _503,
            },
            request=ref("WithdrawRequest"),
            json_body_limit=MAX_JSON_BYTES,
            security=_AUTH,
        )
    },
    "/api/user/withdrawals": {
        "get": operation(
            "listWithdrawals",
            "The user's withdrawals, oldest first.",
            {
                200: json_response("Withdrawals.", {"type": "array", "items": ref("Withdrawal")}),
                204: {"description": "No withdrawals."},
                401: _401,
                503: _503,
            },
            security=_AUTH,
        )
    },
    **database_probe_paths(),
}

_STRING: Schema = {"type": "string", "minLength": 1}
_SCHEMAS: dict[str, Schema] = {
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

SPEC = document(
    "gophermart",
    'The Gophermart loyalty service (seed 003). Errors are JSON {"error": "..."} naming '
    "what is wrong.",
    _PATHS,
    [],
    security_schemes={
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        "cookie": {"type": "apiKey", "in": "cookie", "name": "token"},
    },
    schemas=_SCHEMAS,
    list_spec=False,
)
