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
]

SPEC_PATH = "/openapi.json"
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


def ref(type_: type) -> dict:
    return {"$ref": _REF.format(name=type_.__name__)}


def _schema(body: Any) -> dict:
    """A Struct (by reference) or a literal JSON Schema dict."""
    return body if isinstance(body, dict) else ref(body)


def json_response(
    description: str,
    body: Any = None,
    headers: dict | None = None,
    media_type: str = "application/json",
) -> dict:
    response: dict = {"description": description}
    if body is not None:
        response["content"] = {media_type: {"schema": _schema(body)}}
    if headers:
        response["headers"] = headers
    return response


def error_response(description: str, headers: dict | None = None) -> dict:
    return json_response(description, Error, headers)


def query_parameter(name: str, schema: dict, required: bool = False, description: str = "") -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": schema,
        **({"description": description} if description else {}),
    }


def path_parameter(name: str, schema: dict, description: str = "") -> dict:
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
    responses: dict[int | str, dict],
    *,
    request: Any = None,
    request_media_type: str = "application/json",
    request_description: str = "",
    parameters: list | None = None,
    description: str = "",
    security: list | None = None,
) -> dict:
    """One operation; ``request`` is a Struct type or a JSON Schema dict."""
    op: dict = {
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


def openapi_30(schema):
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


def document(
    title: str,
    description: str,
    paths: dict,
    types: list[type],
    version: str = "1.0.0",
    security_schemes: dict | None = None,
) -> dict:
    """The whole document; ``types`` are every Struct the paths refer to (Error included)."""
    _, schemas = msgspec.json.schema_components([Error, *types], ref_template=_REF)
    components: dict = {"schemas": openapi_30(schemas)}
    if security_schemes:
        components["securitySchemes"] = security_schemes
    spec_op = operation(
        "openapi",
        "This document.",
        {200: json_response("The OpenAPI document.", {"type": "object"})},
    )
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version, "description": description},
        "paths": {**paths, SPEC_PATH: {"get": spec_op}},
        "components": components,
    }
