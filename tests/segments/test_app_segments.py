"""The segments app in process against a real PostgreSQL: routes, statuses, bad input."""

from __future__ import annotations

import itertools

import pytest

from actors.runtime.pg.pool import LazyPool
from actors.runtime.testing import free_port
from actors.segments import rollout
from tests.fixtures_pg import fetch_rows
from web.segments.app import create_app

_ids = itertools.count(3_000_000)
INT64_MAX = 2**63 - 1


def new_user() -> int:
    return next(_ids)


def history_count(db, loop, user_id: int) -> int:
    return fetch_rows(
        loop, db, "SELECT count(*) FROM segments.history WHERE user_id = $1", user_id
    )[0][0]


def error_of(response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    return response.json["error"]


def test_segment_lifecycle(client):
    created = client.post("/api/segments", {"slug": "AVITO_VOICE_MESSAGES"})
    assert created.status_code == 201
    assert created.json == {"slug": "AVITO_VOICE_MESSAGES", "percent": None, "users_assigned": 0}
    again = client.post("/api/segments", {"slug": "AVITO_VOICE_MESSAGES", "percent": 10})
    assert again.status_code == 409 and "AVITO_VOICE_MESSAGES" in error_of(again)
    assert (
        client.post("/api/segments", {"slug": "a.b-c_D", "percent": 12.5}).json["percent"] == 12.5
    )
    listed = client.get("/api/segments")
    assert listed.status_code == 200
    slugs = [s["slug"] for s in listed.json]
    assert slugs == sorted(slugs) and {"AVITO_VOICE_MESSAGES", "a.b-c_D"} <= set(slugs)
    assert {"slug": "a.b-c_D", "percent": 12.5, "users": 0} in listed.json
    exact = client.post("/api/segments", {"slug": "FRACTION", "percent": 46.39676772990039})
    assert exact.json["percent"] == 46.39676772990039  # kept as given

    assert client.delete("/api/segments/AVITO_VOICE_MESSAGES").status_code == 204
    gone = client.delete("/api/segments/AVITO_VOICE_MESSAGES")
    assert gone.status_code == 404 and "AVITO_VOICE_MESSAGES" in error_of(gone)
    assert client.post("/api/segments", {"slug": "AVITO_VOICE_MESSAGES"}).status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        (b'{"slug": "A B"}', "slug"),
        (b'{"slug": "AB\\n"}', "slug"),
        (b'{"slug": ""}', "slug"),
        (b'{"slug": "' + b"x" * 101 + b'"}', "slug"),
        (b'{"slug": 5}', "slug"),
        (b'{"percent": 5}', "slug"),
        (b'{"slug": "OK_1", "percent": 101}', "percent"),
        (b'{"slug": "OK_1", "percent": -1}', "percent"),
        (b'{"slug": "OK_1", "percent": "5"}', "percent"),
        (b'{"slug": "OK_1", "percent": true}', "percent"),
        (b'{"slug": "OK_1", "percent": 1e400}', "percent"),  # out of range, named
        (b'{"slug": "OK_1", "extra": 1}', "extra"),
        (b'{"slug": "OK_1"', "body"),
        (b'["OK_1"]', "body"),
        (b"", "body"),
    ],
)
def test_bad_segment_is_400_naming_the_field_and_creates_nothing(client, body, field):
    response = client.post("/api/segments", body=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert error_of(response).startswith(f"{field}:")
    assert "OK_1" not in [s["slug"] for s in client.get("/api/segments").json]


def test_oversized_body_is_413(client):
    response = client.post("/api/segments", body=b'{"slug": "' + b"x" * 70_000 + b'"}')
    assert response.status_code == 413 and error_of(response).startswith("body:")


def test_user_changes_and_reads(client, db, loop):
    for slug in ("U_A", "U_B", "U_C"):
        assert client.post("/api/segments", {"slug": slug}).status_code == 201
    user = new_user()
    assert client.get(f"/api/users/{user}/segments").json == {"user_id": user, "segments": []}
    changed = client.post(
        f"/api/users/{user}/segments",
        {
            "add": [
                "U_B",
                {"slug": "U_A", "ttl_seconds": 60},
                {"slug": "U_C", "expires_at": "2999-01-01T00:00:00+03:00"},
            ]
        },
    )
    assert changed.status_code == 200
    assert changed.json == {"user_id": user, "segments": ["U_A", "U_B", "U_C"]}
    assert client.nudges >= 1  # an expiry was added: the reaper was told
    assert client.post(
        f"/api/users/{user}/segments", {"add": ["U_A"], "remove": ["U_C", "U_C"]}
    ).json["segments"] == ["U_A", "U_B"]
    assert client.get(f"/api/users/{user}/segments").json["segments"] == ["U_A", "U_B"]
    expires = fetch_rows(
        loop,
        db,
        "SELECT m.expires_at FROM segments.memberships m JOIN segments.segments s "
        "ON s.id = m.segment_id WHERE m.user_id = $1 AND s.slug = 'U_A'",
        user,
    )
    assert expires[0][0] is None  # adding a held segment replaced its expiry
    assert history_count(db, loop, user) == 4  # three adds, one remove


@pytest.mark.parametrize(
    "document, status, field",
    [
        ({"add": ["U2_A", "U2_NOPE"]}, 404, "unknown segment: U2_NOPE"),
        ({"remove": ["U2_NOPE_2", "U2_NOPE_1"]}, 404, "unknown segments: U2_NOPE_1, U2_NOPE_2"),
        ({"add": ["U2_A"], "remove": ["U2_A"]}, 400, "remove:"),
        ({"add": ["U2_A", {"slug": "U2_A", "ttl_seconds": 5}]}, 400, "add[1]:"),
        ({"add": ["bad slug"]}, 400, "add[0]:"),
        ({"add": [5]}, 400, "add[0]:"),
        ({"add": [{"ttl_seconds": 5}]}, 400, "add[0].slug:"),
        ({"add": [{"slug": "U2_A", "ttl_seconds": 0}]}, 400, "add[0].ttl_seconds:"),
        ({"add": [{"slug": "U2_A", "ttl_seconds": 1.5}]}, 400, "add[0].ttl_seconds:"),
        ({"add": [{"slug": "U2_A", "ttl": 5}]}, 400, "add[0].ttl:"),
        (
            {"add": [{"slug": "U2_A", "ttl_seconds": 5, "expires_at": "2999-01-01T00:00:00Z"}]},
            400,
            "add[0]:",
        ),
        ({"add": [{"slug": "U2_A", "expires_at": "2000-01-01T00:00:00Z"}]}, 400, "expires_at"),
        (
            {"add": [{"slug": "U2_A", "expires_at": "2999-01-01T00:00:00"}]},
            400,
            "add[0].expires_at:",
        ),
        ({"add": [{"slug": "U2_A", "expires_at": "tomorrow"}]}, 400, "add[0].expires_at:"),
        ({"add": "U2_A"}, 400, "add:"),
        ({"remove": [None]}, 400, "remove[0]:"),
        ({"add": ["U2_A"] * 101}, 400, "add:"),
        ({"delete": []}, 400, "delete:"),
    ],
)
def test_bad_change_is_rejected_naming_it_and_changes_nothing(
    client, db, loop, document, status, field
):
    client.post("/api/segments", {"slug": "U2_A"})
    user = new_user()
    response = client.post(f"/api/users/{user}/segments", document)
    assert response.status_code == status, response.text
    assert field in error_of(response)
    assert history_count(db, loop, user) == 0
    assert fetch_rows(loop, db, "SELECT 1 FROM segments.users WHERE id = $1", user) == []


@pytest.mark.parametrize("user_id", ["0", "-1", str(INT64_MAX + 1), "abc", "1.5", "１２"])
def test_bad_user_id_is_400(client, user_id):
    for response in (
        client.get(f"/api/users/{user_id}/segments"),
        client.post(f"/api/users/{user_id}/segments", {"add": []}),
    ):
        assert response.status_code == 400 and error_of(response).startswith("user_id:")


def test_largest_user_id_works(client):
    response = client.get(f"/api/users/{INT64_MAX}/segments")
    assert response.status_code == 200 and response.json["user_id"] == INT64_MAX


def test_percent_segment_shows_in_a_new_users_first_response(client):
    assert client.post("/api/segments", {"slug": "U_PCT", "percent": 40}).status_code == 201
    users = [new_user() for _ in range(40)]
    for user in users:
        segments = client.get(f"/api/users/{user}/segments").json["segments"]
        assert ("U_PCT" in segments) == rollout.selected("U_PCT", user, 40)


def test_wrong_method_and_unknown_route_are_json(client):
    assert client.request("PUT", "/api/segments").status_code == 405
    response = client.get("/api/nothing")
    assert response.status_code == 404 and error_of(response)
    assert client.get("/openapi.json").json["info"]["title"] == "segments"
    assert client.get("/readyz").status_code == 200


def test_an_unreachable_database_is_503_with_retry_after(client_of):
    client = client_of(create_app(LazyPool(f"postgresql://postgres@127.0.0.1:{free_port()}/x")))
    assert client.get("/readyz").status_code == 503
    for response in (
        client.get("/api/segments"),
        client.get("/api/users/1/segments"),
        client.post("/api/segments", {"slug": "X"}),
    ):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        assert error_of(response).startswith("database unavailable")
    assert client.get("/healthz").status_code == 200
