"""The OpenAPI 3 document of segments, served at GET /openapi.json.

Built with web.common.openapi. The bodies are checked by code (slugs, expiries, exact
percents), so their schemas are written here; they describe what resources.py and
validation.py do, and tests/segments/test_process_fuzz.py runs schemathesis against the
document: keep them in step.
"""

from __future__ import annotations

from web.common.openapi import (
    Schema,
    database_unavailable,
    document,
    error_response,
    json_response,
    operation,
    path_parameter,
    query_parameter,
    ref,
)
from web.segments.validation import (
    INT64_MAX,
    MAX_BODY_BYTES,
    MAX_ITEMS,
    MAX_TTL_S,
    PERIOD_PATTERN,
)

__all__ = ["SPEC"]

_SLUG: Schema = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_.-]{1,100}$",
    "example": "AVITO_VOICE_MESSAGES",
}
_USER_ID: Schema = {"type": "integer", "format": "int64", "minimum": 1, "maximum": INT64_MAX}
_PERCENT: Schema = {
    "type": "number",
    "minimum": 0,
    "maximum": 100,
    "nullable": True,
    "description": "Share of users assigned by a stable hash of (slug, user id) "
    "into 10000 buckets. Absent or null: no automatic assignment.",
}

_BAD_JSON = (
    "Malformed JSON, not an object, an unknown field, a wrong type or a number out of "
    "range; the error names the field. Nothing changed."
)
_UNAVAILABLE = database_unavailable()
_USER_PATH = path_parameter("user_id", _USER_ID, "A positive 64-bit integer.")
_USER_QUERY = query_parameter("user_id", _USER_ID, description="Only this user's rows.")
_PERIOD: Schema = {"type": "string", "pattern": PERIOD_PATTERN, "example": "2023-08"}

_USER_SEGMENTS = json_response(
    "The user's active segments, sorted; [] when none.", ref("UserSegments")
)

_PATHS: Schema = {
    "/api/segments": {
        "post": operation(
            "createSegment",
            "Create a segment; with percent, assign it to that share of users.",
            {
                201: json_response(
                    "Created; users_assigned counts the known users it took.", ref("Created")
                ),
                400: error_response(_BAD_JSON + " Also a bad slug or percent."),
                409: error_response("A segment of this slug exists."),
                503: _UNAVAILABLE,
            },
            request=ref("NewSegment"),
            json_body_limit=MAX_BODY_BYTES,
        ),
        "get": operation(
            "listSegments",
            "Live segments by slug, with their active member counts.",
            {
                200: json_response("The segments.", {"type": "array", "items": ref("Segment")}),
                503: _UNAVAILABLE,
            },
        ),
    },
    "/api/segments/{slug}": {
        "delete": operation(
            "deleteSegment",
            "Delete a segment: every member leaves it now (history rows).",
            {
                204: {"description": "Deleted."},
                400: error_response("A slug of bad characters or length."),
                404: error_response("No such segment."),
                503: _UNAVAILABLE,
            },
            parameters=[path_parameter("slug", _SLUG)],
        ),
    },
    "/api/users/{user_id}/segments": {
        "get": operation(
            "userSegments",
            "A user's active segments (a new user becomes known, and gets the percent "
            "segments that select them).",
            {
                200: _USER_SEGMENTS,
                400: error_response("A bad user_id."),
                503: _UNAVAILABLE,
            },
            parameters=[_USER_PATH],
        ),
        "post": operation(
            "changeUserSegments",
            "Add and remove segments of a user, all or nothing.",
            {
                200: _USER_SEGMENTS,
                400: error_response(
                    _BAD_JSON + " Also a bad slug, a slug in both lists or twice "
                    "in add, an expiry not in the future."
                ),
                404: error_response("An unknown segment, named."),
                503: _UNAVAILABLE,
            },
            request=ref("Change"),
            json_body_limit=MAX_BODY_BYTES,
            parameters=[_USER_PATH],
            description="Adding a held segment keeps it (a new expiry replaces the old); "
            "removing one not held does nothing.",
        ),
    },
    "/api/history": {
        "get": operation(
            "historyReport",
            "The URL of a month's history report.",
            {
                200: json_response("The report's absolute URL.", ref("ReportUrl")),
                400: error_response("A bad or missing period or user_id."),
            },
            parameters=[
                query_parameter(
                    "period", _PERIOD, required=True, description="A month, YYYY-MM (UTC)."
                ),
                _USER_QUERY,
            ],
        ),
    },
    "/api/history/{period}.csv": {
        "get": operation(
            "historyCsv",
            "A month's changes as CSV, in time order.",
            {
                200: json_response(
                    "The report, streamed.", {"type": "string"}, media_type="text/csv"
                ),
                400: error_response("A bad period or user_id."),
                503: _UNAVAILABLE,
            },
            parameters=[path_parameter("period", _PERIOD), _USER_QUERY],
            description="Header user_id;segment;operation;timestamp; operation "
            "добавление or удаление; timestamp RFC 3339 UTC.",
        ),
    },
}

_ADD_ITEM: Schema = {
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

_SCHEMAS: dict[str, Schema] = {
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

SPEC = document(
    "segments",
    "User segments for experiments, with TTL, percent rollout and a monthly history "
    'report. Every error is {"error": ...}; an unknown route is 404, a wrong method 405.',
    _PATHS,
    [],
    schemas=_SCHEMAS,
    list_spec=False,
)
