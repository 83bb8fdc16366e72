"""The accrual app in process against a real PostgreSQL: the course's accrual flow,
statuses, bad input naming the field, the per-minute limit."""

from __future__ import annotations

import itertools

import pytest

from actors.shared.luhn import checksum_digit
from web.accrual.app import create_app

_seq = itertools.count(1)


def new_number() -> str:
    prefix = f"8{next(_seq):08d}"
    return prefix + checksum_digit(prefix)


def error_of(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json["error"]


def test_course_flow(client):
    for rule in (
        {"match": "Pringles", "reward": 10, "reward_type": "%"},
        {"match": "Coca-Cola", "reward": 12.5, "reward_type": "pt"},
    ):
        added = client.request("POST", "/api/goods", json=rule)
        assert added.status_code == 200 and added.json == rule
    dup = client.request(
        "POST", "/api/goods", json={"match": "Pringles", "reward": 42, "reward_type": "pt"}
    )
    assert dup.status_code == 409 and error_of(dup).startswith("match")
    number = new_number()
    order = {
        "order": number,
        "goods": [
            {"description": "Чайник Tefal", "price": 7000},
            {"description": "Чипсы Pringles бекон", "price": 147.5},
            {"description": "Напиток Coca-Cola Zero 0.5л", "price": 55},
        ],
    }
    assert client.request("POST", "/api/orders", json=order).status_code == 202
    assert client.request("POST", "/api/orders", json=order).status_code == 409
    got = client.request("GET", f"/api/orders/{number}")
    assert got.status_code == 200
    assert got.json == {"order": number, "status": "PROCESSED", "accrual": 27.25}
    assert client.request("GET", f"/api/orders/{new_number()}").status_code == 204
    unmatched = new_number()
    client.request(
        "POST",
        "/api/orders",
        json={"order": unmatched, "goods": [{"description": "Кирпич", "price": 10}]},
    )
    assert client.request("GET", f"/api/orders/{unmatched}").json == {
        "order": unmatched,
        "status": "INVALID",
    }


@pytest.mark.parametrize(
    "body, field",
    [
        (b"", "body"),
        (b"{", "body"),
        (b"[]", "body"),
        (b"[" * 5000, "body"),
        (b'{"match": "", "reward": 10, "reward_type": "%"}', "match"),
        (b'{"match": "Milka", "reward": -10, "reward_type": "%"}', "reward"),
        (b'{"match": "Milka", "reward": 0, "reward_type": "%"}', "reward"),
        (b'{"match": "Milka", "reward": 101, "reward_type": "%"}', "reward"),
        (b'{"match": "Milka", "reward": 1.001, "reward_type": "pt"}', "reward"),
        (b'{"match": "Milka", "reward": 10, "reward_type": "USD"}', "reward_type"),
        (b'{"match": 5, "reward": 10, "reward_type": "%"}', "match"),
        (b'{"match": "Milka", "reward": "10", "reward_type": "%"}', "reward"),
        (b'{"match": "Milka", "reward": 10}', "reward_type"),
        (b'{"match": "Milka", "reward": 10, "reward_type": "%", "x": 1}', "x"),
    ],
)
def test_bad_rules(client, body, field):
    response = client.request("POST", "/api/goods", body=body)
    assert response.status_code == 400, response.text
    assert error_of(response).startswith(field)


@pytest.mark.parametrize(
    "order, field",
    [
        ({"order": "12345678901", "goods": [{"description": "a", "price": 1}]}, "order"),
        ({"order": 12345678903, "goods": [{"description": "a", "price": 1}]}, "order"),
        ({"order": "%s", "goods": []}, "goods"),
        ({"order": "%s", "goods": {}}, "goods"),
        ({"order": "%s", "goods": [{"description": "a"}]}, "goods[0].price"),
        ({"order": "%s", "goods": [{"description": "a", "price": -1}]}, "goods[0].price"),
        ({"order": "%s", "goods": [{"description": 1, "price": 1}]}, "goods[0].description"),
        ({"order": "%s", "goods": [1]}, "goods[0]"),
        ({"order": "%s", "goods": [{"description": "a", "price": 1, "n": 2}]}, "goods[0].n"),
    ],
)
def test_bad_orders(client, order, field):
    if order["order"] == "%s":
        order = {**order, "order": new_number()}
    response = client.request("POST", "/api/orders", json=order)
    assert response.status_code == 400, response.text
    assert error_of(response).startswith(field)
    if isinstance(order["order"], str):  # nothing was registered
        assert client.request("GET", f"/api/orders/{order['order']}").status_code == 204


def test_bad_number_in_path(client):
    assert error_of(client.request("GET", "/api/orders/12a")).startswith("number")


def test_rate_limit_answers_429_with_retry_after_and_text(db, client_of):
    limited = client_of(create_app(db, rate_limit=3, delay_s=0.0))
    number = new_number()
    statuses = [limited.request("GET", f"/api/orders/{number}") for _ in range(5)]
    assert [r.status_code for r in statuses[:3]] == [204, 204, 204]
    refused = statuses[3]
    assert refused.status_code == 429 and statuses[4].status_code == 429
    assert refused.headers["content-type"].startswith("text/plain")
    assert refused.text == "No more than 3 requests per minute allowed"
    assert 1 <= int(refused.headers["retry-after"]) <= 60


def test_delay_reveals_registered_then_processing(db, client_of):
    slow = client_of(create_app(db, delay_s=30))
    number = new_number()
    slow.request(
        "POST", "/api/orders", json={"order": number, "goods": [{"description": "x", "price": 1}]}
    )
    assert slow.request("GET", f"/api/orders/{number}").json == {
        "order": number,
        "status": "REGISTERED",
    }


def test_oversized_and_wrongly_encoded_bodies(client):
    big = {"order": new_number(), "goods": [{"description": "x" * 1000, "price": 1}] * 300}
    too_big = client.request("POST", "/api/orders", json=big)
    assert too_big.status_code == 413 and error_of(too_big).startswith("body")
    assert client.request("GET", f"/api/orders/{big['order']}").status_code == 204
    latin1 = '{"match": "Café", "reward": 1, "reward_type": "pt"}'.encode("latin-1")
    wrong = client.request("POST", "/api/goods", body=latin1)
    assert wrong.status_code == 400 and error_of(wrong).startswith("body")
    many = {"order": new_number(), "goods": [{"description": "x", "price": 1}] * 201}
    assert error_of(client.request("POST", "/api/orders", json=many)).startswith("goods")


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"match": "Huge", "reward": 1' + b"0" * 5000 + b', "reward_type": "pt"}', "reward"),
        (b'{"match": "Huge", "reward": 1e400, "reward_type": "pt"}', "reward"),
        (
            b'{"match": "Huge", "reward": 123456789012345678901234567890, "reward_type": "pt"}',
            "reward",
        ),
        (b'{"match": 1' + b"0" * 5000 + b', "reward": 1, "reward_type": "pt"}', "match"),
    ],
)
def test_a_huge_number_names_its_field(client, body, field):
    """Once "body: malformed JSON" for a valid JSON body; now the field, out of range."""
    response = client.request("POST", "/api/goods", body=body)
    assert response.status_code == 400, response.text
    assert error_of(response).startswith(f"{field}:")


def test_a_huge_price_names_the_good(client):
    order = b'{"order": "%s", "goods": [{"description": "a", "price": 1' + b"0" * 5000 + b"}]}"
    number = new_number()
    response = client.request("POST", "/api/orders", body=order % number.encode())
    assert response.status_code == 400
    assert error_of(response) == "goods[0].price: number out of range"
    assert client.request("GET", f"/api/orders/{number}").status_code == 204


def test_a_non_json_content_type_is_415(client):
    rule = b'{"match": "Typed", "reward": 1, "reward_type": "pt"}'
    response = client.request(
        "POST", "/api/goods", body=rule, headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415 and error_of(response).startswith("Content-Type")
    assert client.request("POST", "/api/goods", body=rule).status_code == 200  # none: JSON
