"""The OpenAPI 3 document of segments, served at GET /openapi.json.

It describes what resources.py and validation.py do; tests/segments/test_app_fuzz.py runs
schemathesis against it: keep them in step.
"""

from __future__ import annotations

from web.segments.validation import (
    INT64_MAX,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MAX_TTL_S,
    PERIOD_PATTERN,
)

__all__ = ["SPEC"]

_SLUG = {"type": "string", "pattern": "^[A-Za-z0-9_.-]{1,100}$", "example": "AVITO_VOICE_MESSAGES"}
_USER_ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
_PERCENT = {
    "type": "number",
    "minimum": 0,
    "maximum": 100,
    "nullable": True,
    "description": "Share of users assigned by a stable hash of (slug, user id) "
    "into 10000 buckets. Absent or null: no automatic assignment.",
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(description, _ref("Error"))


_BAD_JSON = (
    "Malformed JSON, not an object, an unknown field or a wrong type; the error names "
    "the field. Nothing changed."
)
_TOO_LARGE = _error(f"Body over {MAX_BODY_BYTES} bytes. Nothing changed.")
_UNAVAILABLE = _error("The database does not answer; retry after Retry-After seconds.")
_USER_PATH = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "description": "A positive 64-bit integer.",
    "schema": _USER_ID,
}
_USER_QUERY = {
    **_USER_PATH,
    "in": "query",
    "required": False,
    "description": "Only this user's rows.",
}
_PERIOD = {"type": "string", "pattern": PERIOD_PATTERN, "example": "2023-08"}

_USER_SEGMENTS = _json("The user's active segments, sorted; [] when none.", _ref("UserSegments"))

_PATHS = {
    "/api/segments": {
        "post": {
            "operationId": "createSegment",
            "summary": "Create a segment; with percent, assign it to that share of users.",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewSegment")}},
            },
            "responses": {
                "201": _json(
                    "Created; users_assigned counts the known users it took.", _ref("Created")
                ),
                "400": _error(_BAD_JSON + " Also a bad slug or percent."),
                "409": _error("A segment of this slug exists."),
                "413": _TOO_LARGE,
                "503": _UNAVAILABLE,
            },
        },
        "get": {
            "operationId": "listSegments",
            "summary": "Live segments by slug, with their active member counts.",
            "responses": {
                "200": _json("The segments.", {"type": "array", "items": _ref("Segment")}),
                "503": _UNAVAILABLE,
            },
        },
    },
    "/api/segments/{slug}": {
        "delete": {
            "operationId": "deleteSegment",
            "summary": "Delete a segment: every member leaves it now (history rows).",
            "parameters": [{"name": "slug", "in": "path", "required": True, "schema": _SLUG}],
            "responses": {
                "204": {"description": "Deleted."},
                "400": _error("A slug of bad characters or length."),
                "404": _error("No such segment."),
                "503": _UNAVAILABLE,
            },
        },
    },
    "/api/users/{user_id}/segments": {
        "get": {
            "operationId": "userSegments",
            "summary": "A user's active segments (a new user becomes known, and gets the "
            "percent segments that select them).",
            "parameters": [_USER_PATH],
            "responses": {
                "200": _USER_SEGMENTS,
                "400": _error("A bad user_id."),
                "503": _UNAVAILABLE,
            },
        },
        "post": {
            "operationId": "changeUserSegments",
            "summary": "Add and remove segments of a user, all or nothing.",
            "description": "Adding a held segment keeps it (a new expiry replaces the old); "
            "removing one not held does nothing.",
            "parameters": [_USER_PATH],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("Change")}},
            },
            "responses": {
                "200": _USER_SEGMENTS,
                "400": _error(
                    _BAD_JSON + " Also a bad slug, a slug in both lists or twice "
                    "in add, an expiry not in the future."
                ),
                "404": _error("An unknown segment, named."),
                "413": _TOO_LARGE,
                "503": _UNAVAILABLE,
            },
        },
    },
    "/api/history": {
        "get": {
            "operationId": "historyReport",
            "summary": "The URL of a month's history report.",
            "parameters": [
                {
                    "name": "period",
                    "in": "query",
                    "required": True,
                    "description": "A month, YYYY-MM (UTC).",
                    "schema": _PERIOD,
                },
                _USER_QUERY,
            ],
            "responses": {
                "200": _json("The report's absolute URL.", _ref("ReportUrl")),
                "400": _error("A bad or missing period or user_id."),
            },
        },
    },
    "/api/history/{period}.csv": {
        "get": {
            "operationId": "historyCsv",
            "summary": "A month's changes as CSV, in time order.",
            "description": "Header user_id;segment;operation;timestamp; operation "
            "добавление or удаление; timestamp RFC 3339 UTC.",
            "parameters": [
                {"name": "period", "in": "path", "required": True, "schema": _PERIOD},
                _USER_QUERY,
            ],
            "responses": {
                "200": {
                    "description": "The report, streamed.",
                    "content": {"text/csv": {"schema": {"type": "string"}}},
                },
                "400": _error("A bad period or user_id."),
                "503": _UNAVAILABLE,
            },
        },
    },
}

_ADD_ITEM = {
    "oneOf": [
        _SLUG,
        {
            "type": "object",
            "required": ["slug"],
            "additionalProperties": False,
            "properties": {
                "slug": _SLUG,
                "expires_at": {
                    "type": "string",
                    "format": "date-time",
                    "nullable": True,
                    "description": "RFC 3339 with offset, in the future.",
                },
                "ttl_seconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_TTL_S,
                    "nullable": True,
                },
            },
            "description": "At most one of expires_at and ttl_seconds.",
        },
    ]
}

_SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {"error": {"type": "string"}},
    },
    "NewSegment": {
        "type": "object",
        "required": ["slug"],
        "additionalProperties": False,
        "properties": {"slug": _SLUG, "percent": _PERCENT},
    },
    "Created": {
        "type": "object",
        "required": ["slug", "percent", "users_assigned"],
        "properties": {
            "slug": _SLUG,
            "percent": _PERCENT,
            "users_assigned": {"type": "integer", "minimum": 0},
        },
    },
    "Segment": {
        "type": "object",
        "required": ["slug", "percent", "users"],
        "properties": {
            "slug": _SLUG,
            "percent": _PERCENT,
            "users": {"type": "integer", "minimum": 0},
        },
    },
    "Change": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "add": {"type": "array", "maxItems": MAX_ITEMS, "items": _ADD_ITEM, "nullable": True},
            "remove": {"type": "array", "maxItems": MAX_ITEMS, "items": _SLUG, "nullable": True},
        },
    },
    "UserSegments": {
        "type": "object",
        "required": ["user_id", "segments"],
        "properties": {"user_id": _USER_ID, "segments": {"type": "array", "items": _SLUG}},
    },
    "ReportUrl": {
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string", "format": "uri"}},
    },
}

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "segments",
        "version": "1.0.0",
        "description": "User segments for experiments, with TTL, percent rollout and a "
        'monthly history report. Every error is {"error": ...}; an '
        "unknown route is 404, a wrong method 405.",
    },
    "paths": _PATHS,
    "components": {"schemas": _SCHEMAS},
}
