"""The OpenAPI 3.0 document of balances (GET /openapi.json).

Built with web.common.openapi; request bodies are the Structs the resources decode
with (validation.py), responses the Structs below.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from actors.balances.store import MAX_MONEY
from web.balances.validation import MAX_BODY_BYTES, MAX_LIMIT, NewTask, NewUser
from web.common.openapi import (
    Schema,
    document,
    error_response,
    json_body_responses,
    json_request_description,
    json_response,
    operation,
    path_parameter,
    query_parameter,
    ref,
)

__all__ = ["SPEC", "Task", "User"]


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


def _id(name: str) -> Schema:
    return path_parameter(name, {"type": "string", "pattern": "^[0-9]{1,19}$"})


def _list_of(type_: type) -> Schema:
    return {"type": "array", "items": ref(type_)}


_PAGE = [
    query_parameter(
        "after",
        {"type": "integer", "minimum": 0, "maximum": MAX_MONEY},
        description="Only items with an id above this.",
    ),
    query_parameter(
        "limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}
    ),
]
_BAD = error_response("A malformed request, naming the field; nothing changed")
_BODY = json_body_responses(MAX_BODY_BYTES)
_NO_USER = error_response("No such user")

_PATHS: Schema = {
    "/api/v1/user/": {
        "post": operation(
            "createUser",
            "Create a user",
            {
                201: json_response("Created", ref(User)),
                400: _BAD,
                409: error_response("The username is taken"),
                **_BODY,
            },
            request=NewUser,
            request_description=json_request_description(MAX_BODY_BYTES),
        ),
        "get": operation(
            "listUsers",
            "Users by id, paged",
            {200: json_response("Users", _list_of(User)), 400: _BAD},
            parameters=_PAGE,
        ),
    },
    "/api/v1/user/{id}": {
        "get": operation(
            "getUser",
            "One user",
            {200: json_response("The user", ref(User)), 400: _BAD, 404: _NO_USER},
            parameters=[_id("id")],
        ),
    },
    "/api/v1/user/{id}/amount/": {
        "post": operation(
            "queueTask",
            "Queue a replenishment or write-off",
            {
                202: json_response("Queued (committed)", ref(Task)),
                400: _BAD,
                404: _NO_USER,
                409: error_response("Idempotency-Key reused with another type or amount"),
                **_BODY,
            },
            parameters=[
                _id("id"),
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string", "pattern": "^[ -~]{1,255}$"},
                    "description": "A repeat returns the first task and queues nothing.",
                },
            ],
            request=NewTask,
            request_description=json_request_description(MAX_BODY_BYTES),
        ),
    },
    "/api/v1/user/{id}/tasks/": {
        "get": operation(
            "listTasks",
            "A user's tasks in acceptance order, paged",
            {200: json_response("Tasks", _list_of(Task)), 400: _BAD, 404: _NO_USER},
            parameters=[_id("id"), *_PAGE],
        ),
    },
    "/api/v1/task/{task_id}": {
        "get": operation(
            "getTask",
            "One task",
            {
                200: json_response("The task", ref(Task)),
                400: _BAD,
                404: error_response("No such task"),
            },
            parameters=[_id("task_id")],
        ),
    },
}

SPEC = document(
    "balances",
    "Users' balances, changed by tasks applied in acceptance order. Every error is "
    '{"error": ...} naming the field.',
    _PATHS,
    [NewUser, NewTask, User, Task],
    version="1",
)
