"""OpenAPI documents whose schemas come from the request and response types.

Bodies are msgspec Structs (the same types a resource decodes with, where it
can), so a field and its document cannot drift apart: ``msgspec.json.
schema_components`` writes their JSON Schema. What a type cannot say —
routes, statuses, headers, parameters — is written beside the route with the
helpers below, and schemathesis checks the running service against the result.

NOTE: the documents say OpenAPI 3.0.3, not 3.1: under 3.1's JSON Schema 2020-12
``1.0`` is an integer, so schemathesis would send ``1.0`` for an integer field
that our services (rightly) refuse. msgspec's ``anyOf [T, null]`` becomes 3.0's
``nullable``.
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = [
    "Error",
    "Schema",
    "body_limit_response",
    "database_probe_paths",
    "database_unavailable",
    "json_body_responses",
    "json_request_description",
    "document",
    "openapi_30",
    "operation",
    "json_response",
    "error_response",
    "ref",
    "RETRY_AFTER",
    "query_parameter",
    "path_parameter",
    "SPEC_PATH",
    "DOCS_PATH",
]

Schema = dict[str, Any]
"""A JSON Schema, an OpenAPI object, a document: JSON as a dict."""

SPEC_PATH = "/openapi.json"
DOCS_PATH = "/docs"
"""The interactive page on the document (web.common.docs)."""
_REF = "#/components/schemas/{name}"


class Error(msgspec.Struct, forbid_unknown_fields=True):
    """Every error: what is wrong, naming the field when there is one."""

    error: str


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def ref(type_: type | str) -> Schema:
    """A reference to a Struct's schema, or to a hand-written one by name."""
    return {"$ref": _REF.format(name=type_ if isinstance(type_, str) else type_.__name__)}


def _schema(body: Any) -> Schema:
    """A Struct (by reference) or a literal JSON Schema dict."""
    return body if isinstance(body, dict) else ref(body)


def json_response(
    description: str,
    body: Any = None,
    headers: Schema | None = None,
    media_type: str = "application/json",
) -> Schema:
    response: Schema = {"description": description}
    if body is not None:
        response["content"] = {media_type: {"schema": _schema(body)}}
    if headers:
        response["headers"] = headers
    return response


def error_response(description: str, headers: Schema | None = None) -> Schema:
    return json_response(description, Error, headers)


def body_limit_response(limit: int) -> Schema:
    """The 413 of a route whose body is at most ``limit`` bytes."""
    return error_response(f"Body over {limit} bytes. Nothing changed.")


def database_unavailable() -> Schema:
    """The 503 of a PostgreSQL service's route (web.common.database)."""
    return error_response(
        "The database does not answer; retry after Retry-After seconds.", RETRY_AFTER
    )


def database_probe_paths() -> Schema:
    """/healthz and /readyz of a PostgreSQL service (web.common.app.add_probes)."""
    return {
        "/healthz": {"get": operation("health", "Liveness.", {200: {"description": "Alive."}})},
        "/readyz": {
            "get": operation(
                "ready",
                "Readiness: the database answers.",
                {
                    200: {"description": "Ready."},
                    503: {"description": "The database does not answer."},
                },
            )
        },
    }


def json_body_responses(limit: int) -> dict[int | str, Schema]:
    """The 413 and 415 every JSON route of web.common.requests.read_json_body answers."""
    return {
        413: body_limit_response(limit),
        415: error_response(
            "A Content-Type other than application/json or */*+json (none is taken as JSON)."
        ),
    }


def json_request_description(limit: int, what: str = "") -> str:
    """The request body description of a JSON route: what it holds, and its limit."""
    policy = (
        f"At most {limit} bytes of strict UTF-8 JSON; unknown fields are refused. "
        "A missing Content-Type is taken as JSON."
    )
    return f"{what} {policy}" if what else policy


def query_parameter(
    name: str, schema: Schema, required: bool = False, description: str = ""
) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        **({"description": description} if description else {}),
    }


def path_parameter(name: str, schema: Schema, description: str = "") -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": schema,
        **({"description": description} if description else {}),
    }


def operation(
    operation_id: str,
    summary: str,
    responses: dict[int | str, Schema],
    *,
    request: Any = None,
    request_media_type: str = "application/json",
    request_description: str = "",
    json_body_limit: int | None = None,
    parameters: list[Schema] | None = None,
    description: str = "",
    security: list[Schema] | None = None,
) -> Schema:
    """One operation; ``request`` is a Struct type or a JSON Schema dict.

    ``json_body_limit``: the route reads its body with web.common.requests.read_json_body
    at that many bytes; its 413 and 415 and the input policy in the request description
    (after ``request_description``) are then added here, the same for every route.
    """
    if json_body_limit is not None:
        merged = {**responses, **json_body_responses(json_body_limit)}
        responses = dict(sorted(merged.items(), key=lambda item: str(item[0])))
        request_description = json_request_description(json_body_limit, request_description)
    op: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "responses": {str(status): body for status, body in responses.items()},
    }
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if security is not None:
        op["security"] = security
    if request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {request_media_type: {"schema": _schema(request)}},
        }
        if request_description:
            op["requestBody"]["description"] = request_description
    return op


def openapi_30(schema: Any) -> Any:
    """msgspec's JSON Schema, with null unions spelled as OpenAPI 3.0's ``nullable``."""
    if isinstance(schema, list):
        return [openapi_30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: openapi_30(value) for key, value in schema.items()}
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if options and {"type": "null"} in options:
            rest = [option for option in options if option != {"type": "null"}]
            del schema[key]
            if len(rest) == 1 and "$ref" not in rest[0]:
                schema.update(rest[0])
            else:
                schema[key] = rest
            schema["nullable"] = True
    return schema


_JS_EXACT = 2**53
"""Integers a browser's JSON.parse keeps exactly."""


def _browser_safe_examples(schema: Any) -> Any:
    """An ``example`` of 0 (or the nearest bound) for each integer whose bounds a browser
    cannot hold: Swagger UI (/docs) would otherwise fill "Try it out" with 2^63-1 read as
    a float, 9223372036854776000, which the service refuses as out of range."""
    if isinstance(schema, list):
        return [_browser_safe_examples(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _browser_safe_examples(value) for key, value in schema.items()}
    bounds = [schema[key] for key in ("minimum", "maximum") if key in schema]
    if schema.get("type") == "integer" and "example" not in schema:
        if any(abs(bound) > _JS_EXACT for bound in bounds):
            example = max(0, schema.get("minimum", 0))
            schema["example"] = min(example, schema.get("maximum", example))
    return schema


def document(
    title: str,
    description: str,
    paths: Schema,
    types: list[Any],
    version: str = "1.0.0",
    security_schemes: Schema | None = None,
    schemas: dict[str, Schema] | None = None,
    list_spec: bool = True,
) -> Schema:
    """The whole document.

    Args:
        types: every Struct the paths refer to by ``ref`` (Error is added).
        schemas: named JSON Schemas written by hand, for bodies checked by code
            rather than decoded into a Struct (``{"$ref": ...}`` them by name).
        list_spec: list GET /openapi.json itself, and GET /docs (the page on it), among
            the paths.
    """
    _, generated = msgspec.json.schema_components([Error, *types], ref_template=_REF)
    generated = _browser_safe_examples(openapi_30(generated))
    components: Schema = {"schemas": {**generated, **(schemas or {})}}
    if security_schemes:
        components["securitySchemes"] = security_schemes
    spec_op = operation(
        "openapi",
        "This document.",
        {200: json_response("The OpenAPI document.", {"type": "object"})},
    )
    docs_op = operation(
        "docs",
        "Swagger UI on this document; its assets are served under /docs/.",
        {200: json_response("The HTML page.", {"type": "string"}, media_type="text/html")},
    )
    own = {SPEC_PATH: {"get": spec_op}, DOCS_PATH: {"get": docs_op}}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version, "description": description},
        "paths": {**paths, **own} if list_spec else paths,
        "components": components,
    }
