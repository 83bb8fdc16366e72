"""gophermart's routes (seed 003). Resources validate, call the store, shape JSON;
store errors map to statuses once, in app.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import falcon
import falcon.asgi

from actors.gophermart import auth, store
from actors.shared.money import kopecks_json
from web.common.database import Database
from web.common.requests import read_body, read_json_body
from web.common.responses import send_json
from web.gophermart.validation import (
    MAX_JSON_BYTES,
    MAX_ORDER_BYTES,
    parse_credentials,
    parse_order_body,
    parse_withdraw,
)

__all__ = [
    "Auth",
    "BalanceResource",
    "LoginResource",
    "OrdersResource",
    "RegisterResource",
    "WithdrawResource",
    "WithdrawalsResource",
]

COOKIE_NAME = "token"


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Auth:
    """Issues tokens and finds the user of a request (header or cookie)."""

    def __init__(self, secret: str, ttl_s: int):
        self.secret = secret
        self.ttl_s = ttl_s

    def sign_in(self, resp: falcon.asgi.Response, user_id: int) -> None:
        """Hand the client a token: `Authorization: Bearer` and an HttpOnly cookie."""
        token = auth.issue_token(self.secret, user_id, self.ttl_s)
        resp.set_header("Authorization", f"Bearer {token}")
        # NOTE: secure=False: the service speaks plain HTTP (behind TLS termination in
        # production); a Secure cookie would never come back over http://localhost.
        resp.set_cookie(
            COOKIE_NAME,
            token,
            max_age=self.ttl_s,
            path="/",
            secure=False,
            http_only=True,
            same_site="Lax",
        )

    def user_of(self, req: falcon.asgi.Request) -> int:
        """The authenticated user id. Raises 401 unless header or cookie holds a valid token."""
        header = req.get_header("Authorization")
        if header:
            scheme, _, token = header.strip().partition(" ")
            candidate = token.strip() if scheme.lower() == "bearer" else header.strip()
            user_id = auth.user_from_token(self.secret, candidate) if candidate else None
            if user_id is not None:
                return user_id
        # NOTE: cookies are parsed only when the header did not do (a parse per request).
        for candidate in req.get_cookie_values(COOKIE_NAME) or []:
            user_id = auth.user_from_token(self.secret, candidate) if candidate else None
            if user_id is not None:
                return user_id
        raise falcon.HTTPUnauthorized(
            description="not authenticated: send the token of register or login "
            "(Authorization: Bearer <token>, or the token cookie)",
            challenges=["Bearer"],
        )


class RegisterResource:
    def __init__(self, pool: Database, auth_: Auth):
        self.pool, self.auth = pool, auth_

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        credentials = parse_credentials(await read_json_body(req, MAX_JSON_BYTES))
        password_hash = await auth.hash_password(credentials.password)
        user_id = await store.create_user(self.pool, credentials.login, password_hash)
        self.auth.sign_in(resp, user_id)
        send_json(resp, {"login": credentials.login})


class LoginResource:
    def __init__(self, pool: Database, auth_: Auth):
        self.pool, self.auth = pool, auth_

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        credentials = parse_credentials(await read_json_body(req, MAX_JSON_BYTES))
        found = await store.find_user(self.pool, credentials.login)
        user_id, password_hash = found if found is not None else (None, None)
        # NOTE: verified even without a user (against no hash), so both refusals take as long
        verified = await auth.verify_password(password_hash, credentials.password)
        if user_id is None or not verified:
            raise falcon.HTTPUnauthorized(description="login or password: no such pair")
        self.auth.sign_in(resp, user_id)
        send_json(resp, {"login": credentials.login})


class OrdersResource:
    """POST: upload an order number (text/plain); GET: the user's orders, oldest first."""

    def __init__(self, pool: Database, auth_: Auth, on_upload: Callable[[str], None] | None):
        self.pool, self.auth, self.on_upload = pool, auth_, on_upload

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        user_id = self.auth.user_of(req)
        number = parse_order_body(await read_body(req, MAX_ORDER_BYTES))
        if not await store.upload_order(self.pool, user_id, number):
            send_json(resp, {"number": number, "message": "uploaded by you before"})
            return
        if self.on_upload is not None:
            self.on_upload(number)
        send_json(resp, {"number": number, "status": "NEW"}, falcon.HTTP_202)

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        user_id = self.auth.user_of(req)
        orders = await store.list_orders(self.pool, user_id)
        if not orders:
            resp.status = falcon.HTTP_204
            return
        send_json(
            resp,
            [
                {
                    "number": o.number,
                    "status": o.status,
                    "accrual": kopecks_json(o.accrual_kop),
                    "uploaded_at": _rfc3339(o.uploaded_at),
                }
                if o.accrual_kop is not None
                else {
                    "number": o.number,
                    "status": o.status,
                    "uploaded_at": _rfc3339(o.uploaded_at),
                }
                for o in orders
            ],
        )


class BalanceResource:
    def __init__(self, pool: Database, auth_: Auth):
        self.pool, self.auth = pool, auth_

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        balance = await store.get_balance(self.pool, self.auth.user_of(req))
        send_json(
            resp,
            {
                "current": kopecks_json(balance.current_kop),
                "withdrawn": kopecks_json(balance.withdrawn_kop),
            },
        )


class WithdrawResource:
    def __init__(self, pool: Database, auth_: Auth):
        self.pool, self.auth = pool, auth_

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        user_id = self.auth.user_of(req)
        request = parse_withdraw(await read_json_body(req, MAX_JSON_BYTES))
        balance = await store.withdraw(self.pool, user_id, request.order, request.sum_kop)
        send_json(
            resp,
            {
                "order": request.order,
                "sum": kopecks_json(request.sum_kop),
                "current": kopecks_json(balance.current_kop),
                "withdrawn": kopecks_json(balance.withdrawn_kop),
            },
        )


class WithdrawalsResource:
    def __init__(self, pool: Database, auth_: Auth):
        self.pool, self.auth = pool, auth_

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        withdrawals = await store.list_withdrawals(self.pool, self.auth.user_of(req))
        if not withdrawals:
            resp.status = falcon.HTTP_204
            return
        send_json(
            resp,
            [
                {
                    "order": w.order,
                    "sum": kopecks_json(w.sum_kop),
                    "processed_at": _rfc3339(w.processed_at),
                }
                for w in withdrawals
            ],
        )
