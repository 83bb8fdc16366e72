"""The OpenAPI 3 documents of the two ports, each served by its port at GET /openapi.json.

They describe what setter.py and getter.py do (statuses, bodies, headers), and
tests/test_fuzz.py runs schemathesis against them: keep them in step with the code.
"""

from __future__ import annotations

import copy


from actors.grades.records import FIELDS, INT64_MAX, INT64_MIN, MAX_KEY_BYTES

__all__ = ["GETTER_SPEC", "setter_spec"]

_VERSION = "1.0.0"

_ERROR = {
    "type": "object",
    "description": "Every error: what is wrong, naming the field when there is one.",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": False,
}

_USER_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_KEY_BYTES,
    "description": f"Non-empty, at most {MAX_KEY_BYTES} bytes once UTF-8 encoded (maxLength "
                   "counts characters, so a shorter string of multi-byte characters can still "
                   "be refused with 400).",
}

_INT64 = {"type": "integer", "format": "int64", "minimum": INT64_MIN, "maximum": INT64_MAX}

_RECORD = {
    "type": "object",
    "required": ["user_id", *FIELDS],
    "properties": {"user_id": {"type": "string"}, **{field: _INT64 for field in FIELDS}},
    "additionalProperties": False,
}

_RESULT = {
    "type": "object",
    "required": ["result"],
    "properties": {"result": {"$ref": "#/components/schemas/Record"}},
    "additionalProperties": False,
}


def _error(description: str, headers: dict | None = None) -> dict:
    response = {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}}}

_UNAVAILABLE = _error("The replica cannot honour the request now (restoring, catching up, "
                      "bus unreachable). Nothing was changed.", _RETRY_AFTER)
_UNKNOWN_OUTCOME = _error("No answer in time: the write may or may not be applied; "
                          "retrying is safe.")

_SPEC_OPERATION = {
    "get": {
        "operationId": "openapi",
        "summary": "This document.",
        "responses": {"200": {"description": "The OpenAPI document of this port.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}},
    },
}


def _document(title: str, description: str, paths: dict, components: dict) -> dict:
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": _VERSION, "description": description},
        "paths": {**paths, "/openapi.json": copy.deepcopy(_SPEC_OPERATION)},
        "components": components,
    }


def setter_spec(max_body_bytes: int) -> dict:
    """The setter port's document; setter.py passes its body limit."""
    return _document(
        "grades setter",
        "Writes of the grades key-value store. Also served at /set/. An unknown route is 404, "
        "a wrong method 405, both as {\"error\": ...}.",
        {
            "/set": {
                "post": {
                    "operationId": "set",
                    "summary": "Create or merge a user's record.",
                    "description": "Partial sets merge: an absent field keeps its value, a "
                                   "present one overwrites it (0 included); a new user's "
                                   "absent fields are 0. A rejected request (4xx, 503) "
                                   "changes nothing.",
                    "security": [{"basicAuth": []}],
                    "requestBody": {
                        "required": True,
                        "description": f"At most {max_body_bytes} bytes, strict UTF-8 JSON, no key "
                                       "given twice. A missing Content-Type is taken as JSON; any "
                                       "application/json or */*+json type is accepted.",
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/SetRequest"}}},
                    },
                    "responses": {
                        "200": {"description": "The merged record.",
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Result"}}}},
                        "400": _error("Malformed JSON, invalid UTF-8, not an object, user_id "
                                      "missing, empty or too long, a field that is not an "
                                      "int64 (float, string, bool, null, out of range), an "
                                      "unknown field, a field given twice."),
                        "401": _error("Missing or wrong credentials.", {
                            "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}}),
                        "413": _error(f"Body over {max_body_bytes} bytes."),
                        "415": _error("A Content-Type other than application/json or "
                                      "*/*+json."),
                        "503": _UNAVAILABLE,
                        "504": _UNKNOWN_OUTCOME,
                    },
                },
            },
        },
        {
            "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}},
            "schemas": {
                "SetRequest": {
                    "type": "object",
                    "required": ["user_id"],
                    "properties": {"user_id": _USER_ID, **{field: _INT64 for field in FIELDS}},
                    "additionalProperties": False,
                },
                "Record": _RECORD,
                "Result": _RESULT,
                "Error": _ERROR,
            },
        },
    )


GETTER_SPEC = _document(
    "grades getter",
    "Reads, backups and health of the grades key-value store. An unknown route is 404, a "
    "wrong method 405, both as {\"error\": ...}.",
    {
        "/get": {
            "get": {
                "operationId": "get",
                "summary": "A user's record.",
                "parameters": [{"name": "user_id", "in": "query", "required": True,
                                "schema": _USER_ID}],
                "responses": {
                    "200": {"description": "The record.",
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Result"}}}},
                    "400": _error("user_id missing, empty or too long."),
                    "404": _error("Unknown user."),
                    "503": _UNAVAILABLE,
                    "504": _UNKNOWN_OUTCOME,
                },
            },
        },
        "/backup": {
            "get": {
                "operationId": "backup",
                "summary": "A streamed gzip'd CSV of every record.",
                "description": "Line 1 is the metadata (generated_at first, then position, "
                               "log_id, replica_id, hlc, rows, format), line 2 the columns, "
                               "then one row per user.",
                "responses": {
                    "200": {
                        "description": "The backup.",
                        "headers": {
                            "Content-Disposition": {"required": True,
                                                    "schema": {"type": "string"}},
                            "X-Backup-Generated-At-Ms": {
                                "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                            "X-Backup-Position": {
                                "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                        },
                        "content": {"application/gzip": {
                            "schema": {"type": "string", "format": "binary"}}},
                    },
                    "503": _UNAVAILABLE,
                    "504": _UNKNOWN_OUTCOME,
                },
            },
        },
        "/healthz": {
            "get": {
                "operationId": "healthz",
                "summary": "The process answers.",
                "responses": {"200": {"description": "Alive.", "content": {"application/json": {
                    "schema": {"type": "object", "required": ["status"],
                               "properties": {"status": {"type": "string", "enum": ["alive"]}}}}}}},
            },
        },
        "/readyz": {
            "get": {
                "operationId": "readyz",
                "summary": "Restored and (if replicated) live with the bus.",
                "responses": {
                    "200": {"description": "Ready.", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Readiness"}}}},
                    "503": {"description": "Not ready (yet).", "headers": _RETRY_AFTER,
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/Readiness"}}}},
                },
            },
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics: HTTP requests of both ports, replica and bus.",
                "responses": {"200": {"description": "Prometheus text format.", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}},
            },
        },
    },
    {
        "schemas": {
            "Record": _RECORD,
            "Result": _RESULT,
            "Error": _ERROR,
            "Readiness": {
                "type": "object",
                "description": "The storage actor's state; phase is restoring, catching_up, "
                               "ready, or down (with reason) when the actor does not answer.",
                "required": ["ready", "phase"],
                "properties": {
                    "ready": {"type": "boolean"},
                    "phase": {"type": "string"},
                    "reason": {"type": "string"},
                    "replica_id": {"type": "integer"},
                    "rows": {"type": "integer", "minimum": 0},
                    "position": {"type": "integer", "minimum": 0},
                    "log_id": {"type": "string"},
                    "replicated": {"type": "boolean"},
                    "bus_up": {"type": "boolean"},
                    "broker_live": {"type": "boolean"},
                    "pending_batches": {"type": "integer", "minimum": 0},
                    "restored_rows": {"type": "integer", "minimum": 0},
                    "writable": {"type": "boolean"},
                },
                "additionalProperties": True,
            },
        },
    },
)
