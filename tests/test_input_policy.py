"""One input policy, checked on every HTTP app in process (falcon ASGIConductor) over a
real PostgreSQL: the four PostgreSQL services' apps and grades' setter.

For each app's JSON route: a bounded body (413 naming the limit, before the body is
read when Content-Length says so), malformed JSON or invalid UTF-8 400, unknown fields
400 naming the field, a non-JSON Content-Type 415 (a missing one is taken as JSON),
numbers out of range 400 naming the field, every error ``{"error": "..."}``, and the
limit named in the app's OpenAPI document.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.app_client import AppClient
from tests.fixtures_pg import migrated_pool

_HUGE_INTEGER = b"1" + b"0" * 5000
"""Beyond any integer a decoder makes (Python refuses to parse more than 4300 digits)."""
_OUT_OF_RANGE = (b"1e400", b"123456789012345678901234567890")
"""Beyond a float, beyond a 64-bit integer."""


@dataclass
class JsonRoute:
    """An app's JSON route: a valid body is ``prefix + <value of number_field> + "}"``."""

    name: str
    client: AppClient
    path: str
    limit: int
    prefix: bytes
    number_field: str
    headers: dict[str, str] = field(default_factory=dict)

    def body(self, number: bytes = b"1") -> bytes:
        return self.prefix + number + b"}"

    def post(self, body: bytes, content_type: str | None = "application/json") -> Any:
        headers = dict(self.headers)
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.client.request("POST", self.path, body=body, headers=headers)

    def spec(self) -> dict[str, Any]:
        document: dict[str, Any] = self.client.get("/openapi.json").json
        return document


def _grades_setter() -> tuple[Any, dict[str, str]]:
    from actors.runtime.client import AsyncClient
    from web.grades.setter import BasicAuth, create_app

    # NOTE: never called: every request here is refused before the storage actor is asked
    store = AsyncClient("ipc:///nonexistent/grades-input-policy", 1.0, peer="storage actor")
    token = base64.b64encode(b"user:password").decode()
    return create_app(store, BasicAuth("user", "password")), {"Authorization": f"Basic {token}"}


@pytest.fixture(scope="module")
def routes(pg_dsn, loop) -> dict[str, JsonRoute]:
    from actors.accrual.store import SCHEMA_DIR as ACCRUAL_SCHEMA
    from actors.balances.store import SCHEMA_DIR as BALANCES_SCHEMA
    from actors.gophermart.store import SCHEMA_DIR as GOPHERMART_SCHEMA
    from actors.segments.store import SCHEMA_DIR as SEGMENTS_SCHEMA
    from web.accrual.app import create_app as accrual_app
    from web.accrual.validation import MAX_BODY_BYTES as ACCRUAL_LIMIT
    from web.balances.app import create_app as balances_app
    from web.balances.validation import MAX_BODY_BYTES as BALANCES_LIMIT
    from web.gophermart.app import create_app as gophermart_app
    from web.gophermart.validation import MAX_JSON_BYTES as GOPHERMART_LIMIT
    from web.grades.setter import MAX_BODY_BYTES as GRADES_LIMIT
    from web.segments.app import create_app as segments_app
    from web.segments.validation import MAX_BODY_BYTES as SEGMENTS_LIMIT

    pools = []
    for service, schema in (
        ("accrual", ACCRUAL_SCHEMA),
        ("gophermart", GOPHERMART_SCHEMA),
        ("segments", SEGMENTS_SCHEMA),
        ("balances", BALANCES_SCHEMA),
    ):
        generator = migrated_pool(pg_dsn, loop, service, schema, max_size=4)
        pools.append((generator, next(generator)))
    accrual, gophermart, segments, balances = (pool for _, pool in pools)
    grades, grades_auth = _grades_setter()
    found = [
        JsonRoute(
            "accrual",
            AppClient(accrual_app(accrual), loop),
            "/api/goods",
            ACCRUAL_LIMIT,
            b'{"match": "policy", "reward_type": "pt", "reward": ',
            "reward",
        ),
        JsonRoute(
            "gophermart",
            AppClient(gophermart_app(gophermart, "policy-secret-of-thirty-two-byte", 60), loop),
            "/api/user/register",
            GOPHERMART_LIMIT,
            b'{"password": "policy", "login": ',
            "login",
        ),
        JsonRoute(
            "segments",
            AppClient(segments_app(segments), loop),
            "/api/segments",
            SEGMENTS_LIMIT,
            b'{"slug": "POLICY", "percent": ',
            "percent",
        ),
        JsonRoute(
            "balances",
            AppClient(balances_app(balances), loop),
            "/api/v1/user/",
            BALANCES_LIMIT,
            b'{"username": "policy", "balance": ',
            "balance",
        ),
        JsonRoute(
            "grades",
            AppClient(grades, loop),
            "/set",
            GRADES_LIMIT,
            b'{"user_id": "policy", "spp": ',
            "spp",
            grades_auth,
        ),
    ]
    yield {route.name: route for route in found}
    for route in found:
        route.client.close()
    for generator, _ in pools:
        generator.close()  # runs migrated_pool's cleanup: the pool is closed


APPS = ["accrual", "gophermart", "segments", "balances", "grades"]


def error_of(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert set(response.json) == {"error"}, response.json
    error = response.json["error"]
    assert isinstance(error, str) and error
    return error


@pytest.mark.parametrize("app", APPS)
def test_unknown_fields_are_400_naming_the_field(routes, app):
    route = routes[app]
    response = route.post(route.prefix + b'1, "extra": 2}')
    assert response.status_code == 400, response.text
    assert error_of(response).startswith("extra: unknown field"), response.text


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "text/json"]
)
def test_a_non_json_content_type_is_415(routes, app, content_type):
    route = routes[app]
    response = route.post(route.body(), content_type)
    assert response.status_code == 415, response.text
    assert error_of(response).startswith("Content-Type:")


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    "content_type", [None, "", "application/json; charset=utf-8", "application/merge-patch+json"]
)
def test_a_missing_or_json_content_type_reaches_the_body_checks(routes, app, content_type):
    route = routes[app]
    response = route.post(route.prefix + b'1, "extra": 2}', content_type)
    assert response.status_code == 400 and error_of(response).startswith("extra:")


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"{,}", b"not json", b"[1]", b"null", b'{"\xff": 1}', b'\xef\xbb\xbf{"a": 1}'],
    ids=["empty", "unterminated", "comma", "not json", "array", "null", "invalid UTF-8", "BOM"],
)
def test_malformed_json_or_invalid_utf8_is_400_naming_the_body(routes, app, body):
    response = routes[app].post(body)
    assert response.status_code == 400, response.text
    assert error_of(response).startswith("body:")


@pytest.mark.parametrize(
    "app, number",
    [
        *(
            (app, number)
            for app in APPS
            for number in (b"1e400", b"123456789012345678901234567890")
        ),
        # a 5001-digit integer fits only under the larger limits
        ("accrual", _HUGE_INTEGER),
        ("segments", _HUGE_INTEGER),
        ("balances", _HUGE_INTEGER),
    ],
)
def test_numbers_out_of_range_are_400_naming_the_field(routes, app, number):
    route = routes[app]
    response = route.post(route.body(number))
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error.startswith(f"{route.number_field}:"), error
    if number == _HUGE_INTEGER:
        assert "out of range" in error


@pytest.mark.parametrize("app", APPS)
def test_a_body_over_the_limit_is_413_naming_it(routes, app):
    route = routes[app]
    body = route.body(b" " * route.limit)  # valid JSON, one limit of padding too long
    response = route.post(body)
    assert response.status_code == 413, response.text
    error = error_of(response)
    assert error.startswith("body:") and str(route.limit) in error


@pytest.mark.parametrize("app", APPS)
def test_a_body_at_the_limit_is_read(routes, app):
    route = routes[app]
    padding = b" " * (route.limit - len(route.body(b'1, "extra": 2')))
    body = route.prefix + b"1, " + padding + b'"extra": 2}'
    assert len(body) == route.limit
    response = route.post(body)
    assert response.status_code == 400 and error_of(response).startswith("extra:")


@pytest.mark.parametrize("app", APPS)
def test_the_document_names_the_limit_and_the_statuses(routes, app):
    route = routes[app]
    operation = route.spec()["paths"][route.path]["post"]
    assert str(route.limit) in operation["requestBody"]["description"]
    assert str(route.limit) in operation["responses"]["413"]["description"]
    assert {"400", "413", "415"} <= set(operation["responses"])


def test_every_app_is_checked():
    """A sixth app joins APPS (and the fixture) to be held to the policy."""
    assert len(APPS) == len(set(APPS)) == 5


def test_the_readers_limits_are_as_documented():
    """Each service keeps the limit it had: named constants, in bytes."""
    from web.accrual.validation import MAX_BODY_BYTES as accrual
    from web.balances.validation import MAX_BODY_BYTES as balances
    from web.gophermart.validation import MAX_JSON_BYTES, MAX_ORDER_BYTES
    from web.grades.setter import MAX_BODY_BYTES as grades
    from web.segments.validation import MAX_BODY_BYTES as segments

    assert (grades, MAX_JSON_BYTES, MAX_ORDER_BYTES) == (4096, 4096, 1024)
    assert (segments, balances, accrual) == (64 * 1024, 16 * 1024, 256 * 1024)
