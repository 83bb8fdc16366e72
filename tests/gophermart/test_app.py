"""The gophermart app in process against a real PostgreSQL: every route and status of
seed 003, tokens in header and cookie, and bad input that changes nothing."""

from __future__ import annotations

import itertools

import pytest

from actors.gophermart import auth, store
from actors.shared.luhn import checksum_digit

_seq = itertools.count(1)


def new_login(prefix: str = "app") -> str:
    return f"{prefix}-{next(_seq)}"


def new_number() -> str:
    prefix = f"9{next(_seq):08d}"
    return prefix + checksum_digit(prefix)


def bad_luhn(number: str) -> str:
    return number[:-1] + str((int(number[-1]) + 1) % 10)


def error_of(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json["error"]


def signed_in(client, login: str | None = None) -> dict:
    response = client.register(login or new_login())
    assert response.status_code == 200, response.text
    return {"Authorization": response.headers["authorization"]}


def test_register_login_and_the_token_in_header_and_cookie(client):
    login = new_login("alice")
    registered = client.register(login, "pa55word")
    assert registered.status_code == 200 and registered.json == {"login": login}
    header = registered.headers["authorization"]
    assert header.startswith("Bearer ")
    cookie = registered.cookies["token"]
    assert cookie.value == header.split(" ", 1)[1] and cookie.http_only and cookie.path == "/"
    assert client.register(login, "other").status_code == 409
    logged = client.request(
        "POST", "/api/user/login", json={"login": login, "password": "pa55word"}
    )
    assert logged.status_code == 200 and logged.headers["authorization"].startswith("Bearer ")
    for body in (
        {"login": login, "password": "wrong"},
        {"login": "nobody-" + login, "password": "pa55word"},
    ):
        refused = client.request("POST", "/api/user/login", json=body)
        assert refused.status_code == 401 and "login or password" in error_of(refused)
    by_header = client.request("GET", "/api/user/balance", headers={"Authorization": header})
    by_cookie = client.request(
        "GET", "/api/user/balance", headers={"Cookie": f"token={cookie.value}"}
    )
    assert by_header.status_code == by_cookie.status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Cookie": "token=garbage"},
        {"Authorization": "Bearer " + auth.issue_token("another-secret-of-32-bytes-long!", 1, 60)},
        {
            "Authorization": "Bearer "
            + auth.issue_token("test-secret-of-thirty-two-bytes!", 2**63, 60)
        },  # no bigint names it
        {
            "Authorization": "Bearer "
            + auth.issue_token("test-secret-of-thirty-two-bytes!", 1, 60, now=0)
        },  # expired in 1970
    ],
)
@pytest.mark.parametrize(
    "method, path",
    [
        ("POST", "/api/user/orders"),
        ("GET", "/api/user/orders"),
        ("GET", "/api/user/balance"),
        ("POST", "/api/user/balance/withdraw"),
        ("GET", "/api/user/withdrawals"),
    ],
)
def test_protected_routes_need_a_valid_token(client, headers, method, path):
    response = client.request(method, path, headers=headers, body=b"12345678903")
    assert response.status_code == 401 and "token" in error_of(response)


def test_a_token_of_an_unknown_user_is_401(client):
    headers = {"Authorization": "Bearer " + auth.issue_token(client.SECRET, 10**12, 60)}
    for method, path, body in [
        ("POST", "/api/user/orders", b"12345678903"),
        ("GET", "/api/user/balance", b""),
        ("POST", "/api/user/balance/withdraw", b'{"order": "12345678903", "sum": 1}'),
    ]:
        response = client.request(method, path, body=body, headers=headers)
        assert response.status_code == 401 and "no user" in error_of(response)


@pytest.mark.parametrize(
    "body, field",
    [
        (b"", "body"),
        (b"{", "body"),
        (b"[]", "body"),
        (b"null", "body"),
        (b'{"login": "x"}', "password"),
        (b'{"password": "x"}', "login"),
        (b'{"login": "", "password": "x"}', "login"),
        (b'{"login": "x", "password": ""}', "password"),
        (b'{"login": 5, "password": "x"}', "login"),
        (b'{"login": "x", "password": null}', "password"),
        (b'{"login": "x", "password": "y", "role": "admin"}', "role"),
        (b'{"login": "' + b"x" * 257 + b'", "password": "y"}', "login"),
        (b'{"login": "\\u0000", "password": "y"}', "login"),
        (b'{"login": "\xff", "password": "y"}', "body"),
        (b"[" * 4000 + b"]" * 90, "body"),  # nesting deeper than the decoder recurses
    ],
)
def test_bad_credentials_are_400_naming_the_field(client, body, field):
    for path in ("/api/user/register", "/api/user/login"):
        response = client.request(
            "POST", path, body=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, response.text)
        assert error_of(response).startswith(field)


def test_oversized_body_is_413(client):
    big = b'{"login": "' + b"x" * 5000 + b'", "password": "y"}'
    assert client.request("POST", "/api/user/register", body=big).status_code == 413
    headers = signed_in(client)
    too_long = client.request("POST", "/api/user/orders", body=b"1" * 2000, headers=headers)
    assert too_long.status_code == 413 and "body" in error_of(too_long)


def test_order_upload_statuses(client):
    alice, bob = signed_in(client), signed_in(client)
    number = new_number()
    assert client.request("GET", "/api/user/orders", headers=alice).status_code == 204
    for body, status in [
        (b"", 400),
        (b"  ", 400),
        (b"12a45", 400),
        (b"-5", 400),
        ("١٢٣".encode(), 400),
        (b"\xff", 400),
        (bad_luhn(number).encode(), 422),
        (b"1" * 65, 422),
    ]:
        response = client.request(
            "POST", "/api/user/orders", body=body, headers={**alice, "Content-Type": "text/plain"}
        )
        assert response.status_code == status, (body, response.text)
        assert error_of(response).startswith("order number")
    assert client.nudged == []
    accepted = client.request(
        "POST",
        "/api/user/orders",
        body=f" {number}\n".encode(),
        headers={**alice, "Content-Type": "text/plain"},
    )
    assert accepted.status_code == 202 and accepted.json == {"number": number, "status": "NEW"}
    assert client.nudged == [number]
    again = client.request("POST", "/api/user/orders", body=number.encode(), headers=alice)
    assert again.status_code == 200
    taken = client.request("POST", "/api/user/orders", body=number.encode(), headers=bob)
    assert taken.status_code == 409 and "another user" in error_of(taken)
    assert client.nudged == [number]
    second = new_number()
    client.request("POST", "/api/user/orders", body=second.encode(), headers=alice)
    listed = client.request("GET", "/api/user/orders", headers=alice)
    assert listed.status_code == 200
    assert [(o["number"], o["status"]) for o in listed.json] == [(number, "NEW"), (second, "NEW")]
    assert all("accrual" not in o and o["uploaded_at"][-6] in "+-" for o in listed.json)


def test_processed_orders_balance_withdraw_withdrawals(client, db, loop):
    headers = signed_in(client)
    number, invalid = new_number(), new_number()
    for n in (number, invalid):
        client.request("POST", "/api/user/orders", body=n.encode(), headers=headers)
    loop.run(
        store.finish_orders(
            db, [store.Final(number, "PROCESSED", 72998), store.Final(invalid, "INVALID", None)]
        )
    )
    orders = client.request("GET", "/api/user/orders", headers=headers).json
    assert orders[0]["status"] == "PROCESSED" and orders[0]["accrual"] == 729.98
    assert orders[1]["status"] == "INVALID" and "accrual" not in orders[1]
    balance = client.request("GET", "/api/user/balance", headers=headers)
    assert balance.text == '{"current":729.98,"withdrawn":0}'
    assert client.request("GET", "/api/user/withdrawals", headers=headers).status_code == 204
    order = new_number()
    done = client.request(
        "POST",
        "/api/user/balance/withdraw",
        headers=headers,
        body=b'{"order": "%s", "sum": 700.5}' % order.encode(),
    )
    assert done.status_code == 200, done.text
    assert done.json == {"order": order, "sum": 700.5, "current": 29.48, "withdrawn": 700.5}
    reused = client.request(
        "POST", "/api/user/balance/withdraw", headers=headers, json={"order": order, "sum": 1}
    )
    assert reused.status_code == 409 and error_of(reused).startswith("order")
    poor = client.request(
        "POST",
        "/api/user/balance/withdraw",
        headers=headers,
        json={"order": new_number(), "sum": 29.49},
    )
    assert poor.status_code == 402 and error_of(poor).startswith("sum")
    listed = client.request("GET", "/api/user/withdrawals", headers=headers)
    assert [(w["order"], w["sum"]) for w in listed.json] == [(order, 700.5)]
    assert listed.json[0]["processed_at"][-6:] == "+00:00"
    assert client.request("GET", "/api/user/balance", headers=headers).json == {
        "current": 29.48,
        "withdrawn": 700.5,
    }


@pytest.mark.parametrize(
    "body, status, field",
    [
        (b"", 400, "body"),
        (b"{", 400, "body"),
        (b"[1]", 400, "body"),
        (b'{"order": "%s"}', 400, "sum"),
        (b'{"sum": 5}', 400, "order"),
        (b'{"order": %s, "sum": 5}', 400, "order"),  # a number, not a string
        (b'{"order": "%s", "sum": "5"}', 400, "sum"),
        (b'{"order": "%s", "sum": 0}', 400, "sum"),
        (b'{"order": "%s", "sum": -1}', 400, "sum"),
        (b'{"order": "%s", "sum": 1.001}', 400, "sum"),
        (b'{"order": "%s", "sum": true}', 400, "sum"),
        (b'{"order": "%s", "sum": 1e400}', 400, "sum"),
        (b'{"order": "%s", "sum": 1, "note": "x"}', 400, "note"),
        (b'{"order": "12345678902", "sum": 1}', 422, "order"),
        (b'{"order": "12a", "sum": 1}', 422, "order"),
        (b'{"order": "", "sum": 1}', 422, "order"),
    ],
)
def test_bad_withdrawals_change_nothing(client, db, loop, body, status, field):
    headers = signed_in(client)
    number = new_number()
    client.request("POST", "/api/user/orders", body=number.encode(), headers=headers)
    loop.run(store.finish_orders(db, [store.Final(number, "PROCESSED", 1000)]))
    if b"%s" in body:
        body = body % new_number().encode()
    response = client.request(
        "POST",
        "/api/user/balance/withdraw",
        body=body,
        headers={**headers, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert error_of(response).startswith(field)
    assert client.request("GET", "/api/user/balance", headers=headers).json == {
        "current": 10,
        "withdrawn": 0,
    }
    assert client.request("GET", "/api/user/withdrawals", headers=headers).status_code == 204


def test_unknown_route_and_wrong_method_are_json(client):
    assert error_of(client.request("GET", "/api/user/nothing")).startswith("no route")
    wrong = client.request("DELETE", "/api/user/orders")
    assert wrong.status_code == 405 and error_of(wrong)
    assert client.request("GET", "/openapi.json").json["info"]["title"] == "gophermart"
    assert client.request("GET", "/readyz").status_code == 200
