"""balances' HTTP resources: users, amount tasks, task status.

Resources parse (web.balances.validation), call actors.balances.store, and shape the
JSON; the store's typed errors are mapped to statuses once, in app.py. Ids are JSON
strings, as in the seed's examples (`"id": "5"`); amounts and balances are integers in
minor units.
"""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from actors.balances import store
from actors.balances.intake import Intake
from web.balances.validation import (
    MAX_BODY_BYTES,
    idempotency_key,
    page,
    parse_new_task,
    parse_new_user,
    path_id,
)
from web.common.database import Database
from web.common.requests import read_json_body
from web.common.responses import send_json

__all__ = [
    "AmountResource",
    "TaskResource",
    "UserResource",
    "UserTasksResource",
    "UsersResource",
    "task_json",
    "user_json",
]


def user_json(user: store.User) -> dict[str, Any]:
    return {"id": str(user.id), "username": user.username, "balance": user.balance}


def task_json(task: store.Task) -> dict[str, Any]:
    out: dict[str, Any] = {
        "task_id": str(task.id),
        "user_id": str(task.user_id),
        "type": task.type,
        "amount": task.amount,
        "status": task.status,
        "created_at": task.created_at.isoformat(),
    }
    if task.status == store.DONE:
        out["balance_after"] = task.balance_after
    if task.status == store.CANCELLED:
        out["reason"] = task.reason
    if task.applied_at is not None:
        out["applied_at"] = task.applied_at.isoformat()
    return out


def _next_link(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    items: list[Any],
    limit: int,
    last_id: int,
) -> None:
    if len(items) == limit:
        resp.append_link(f"{req.path}?after={last_id}&limit={limit}", "next")


class UsersResource:
    """/api/v1/user/: POST creates a user (201), GET lists users by id (paged)."""

    def __init__(self, db: Database):
        self.db = db

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        body = parse_new_user(await read_json_body(req, MAX_BODY_BYTES))
        user = await store.create_user(self.db, body.username, body.balance)
        resp.location = f"/api/v1/user/{user.id}"
        send_json(resp, user_json(user), falcon.HTTP_201)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        after, limit = page(req)
        users = await store.list_users(self.db, after=after, limit=limit)
        if users:
            _next_link(req, resp, users, limit, users[-1].id)
        send_json(resp, [user_json(u) for u in users])


class UserResource:
    """/api/v1/user/{user_id}: GET one user."""

    def __init__(self, db: Database):
        self.db = db

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str
    ) -> None:
        user = await store.get_user(self.db, path_id(user_id, "id"))
        send_json(resp, user_json(user))


class AmountResource:
    """/api/v1/user/{user_id}/amount/: POST queues a task (202 once committed, in a
    commit shared with the worker's concurrent POSTs)."""

    def __init__(self, intake: Intake):
        self.intake = intake

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str
    ) -> None:
        uid = path_id(user_id, "id")
        key = idempotency_key(req)
        body = parse_new_task(await read_json_body(req, MAX_BODY_BYTES))
        task, created = await self.intake.enqueue(uid, body.type, body.amount, key)
        if not created:
            resp.set_header("Idempotent-Replayed", "true")
        resp.location = f"/api/v1/task/{task.id}"
        send_json(resp, task_json(task), falcon.HTTP_202)


class UserTasksResource:
    """/api/v1/user/{user_id}/tasks/: GET a user's tasks in acceptance order (paged)."""

    def __init__(self, db: Database):
        self.db = db

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, user_id: str
    ) -> None:
        uid = path_id(user_id, "id")
        after, limit = page(req)
        tasks = await store.list_tasks(self.db, uid, after=after, limit=limit)
        if tasks:
            _next_link(req, resp, tasks, limit, tasks[-1].id)
        send_json(resp, [task_json(t) for t in tasks])


class TaskResource:
    """/api/v1/task/{task_id}: GET one task."""

    def __init__(self, db: Database):
        self.db = db

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, task_id: str
    ) -> None:
        task = await store.get_task(self.db, path_id(task_id, "task_id"))
        send_json(resp, task_json(task))
