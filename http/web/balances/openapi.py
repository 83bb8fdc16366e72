"""The OpenAPI 3.0 document of balances (GET /openapi.json); bodies from msgspec types."""

from __future__ import annotations

from typing import Literal

import msgspec

from actors.balances.store import MAX_MONEY
from web.balances.validation import MAX_LIMIT, NewTask, NewUser
from web.common.openapi import openapi_30

__all__ = ["SPEC"]


class User(msgspec.Struct):
    id: str
    username: str
    balance: int


class Task(msgspec.Struct, omit_defaults=True):
    task_id: str
    user_id: str
    type: Literal["replenishment", "write-off"]
    amount: int
    status: Literal["queued", "done", "cancelled"]
    created_at: str
    balance_after: int | None = None
    reason: str | None = None
    applied_at: str | None = None


class ErrorBody(msgspec.Struct):
    error: str


_schemas, _components = msgspec.json.schema_components(
    [NewUser, NewTask, User, Task, ErrorBody, list[User], list[Task]],
    ref_template="#/components/schemas/{name}",
)
_NEW_USER, _NEW_TASK, _USER, _TASK, _ERROR, _USERS, _TASKS = _schemas


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return _json(_ERROR, description)


def _id(name: str) -> dict:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
    }


_PAGE = [
    {
        "name": "after",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_MONEY},
        "description": "Only items with an id above this.",
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100},
    },
]
_BAD = _error("A malformed request, naming the field; nothing changed")

SPEC = {
    "openapi": "3.0.3",
    "info": {
        "title": "balances",
        "version": "1",
        "description": "Users' balances, changed by tasks applied in acceptance order.",
    },
    "paths": {
        "/api/v1/user/": {
            "post": {
                "summary": "Create a user",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _NEW_USER}},
                },
                "responses": {
                    "201": _json(_USER, "Created"),
                    "400": _BAD,
                    "409": _error("The username is taken"),
                    "413": _error("Body too large"),
                },
            },
            "get": {
                "summary": "Users by id, paged",
                "parameters": _PAGE,
                "responses": {"200": _json(_USERS, "Users"), "400": _BAD},
            },
        },
        "/api/v1/user/{id}": {
            "get": {
                "summary": "One user",
                "parameters": [_id("id")],
                "responses": {
                    "200": _json(_USER, "The user"),
                    "400": _BAD,
                    "404": _error("No such user"),
                },
            },
        },
        "/api/v1/user/{id}/amount/": {
            "post": {
                "summary": "Queue a replenishment or write-off",
                "parameters": [
                    _id("id"),
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
                        "description": "A repeat returns the first task and queues nothing.",
                    },
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _NEW_TASK}},
                },
                "responses": {
                    "202": _json(_TASK, "Queued (committed)"),
                    "400": _BAD,
                    "404": _error("No such user"),
                    "413": _error("Body too large"),
                    "409": _error("Idempotency-Key reused with another type or amount"),
                },
            },
        },
        "/api/v1/user/{id}/tasks/": {
            "get": {
                "summary": "A user's tasks in acceptance order, paged",
                "parameters": [_id("id"), *_PAGE],
                "responses": {
                    "200": _json(_TASKS, "Tasks"),
                    "400": _BAD,
                    "404": _error("No such user"),
                },
            },
        },
        "/api/v1/task/{task_id}": {
            "get": {
                "summary": "One task",
                "parameters": [_id("task_id")],
                "responses": {
                    "200": _json(_TASK, "The task"),
                    "400": _BAD,
                    "404": _error("No such task"),
                },
            },
        },
    },
    "components": {"schemas": openapi_30(_components)},
}
