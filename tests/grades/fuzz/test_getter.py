"""hypothesis over the getter: any user_id, raw query strings, any method and path."""

from __future__ import annotations

import string
from urllib.parse import quote

import requests
from hypothesis import given
from hypothesis import strategies as st

from actors.grades.records import MAX_KEY_BYTES
from tests.grades.fuzz.oracle import (
    AUTH_HEADER,
    GET_STATUSES,
    TIMEOUT_S,
    acceptable,
    assert_error_body,
    assert_sane,
    encode_pairs,
    fuzz_settings,
    post_set,
    user_ids,
)

# --- hypothesis: the getter ---------------------------------------------------------


def test_get_with_any_user_id_is_200_400_or_404(replica, session):
    known = {}

    @fuzz_settings(150)
    @given(user_ids | st.text(max_size=140), st.booleans())
    def run(user_id, written):
        if written and acceptable([("user_id", user_id)]):
            response = post_set(
                replica, session, encode_pairs([("user_id", user_id), ("spp", len(user_id))])
            )
            assert response.status_code == 200, response.text
            known[user_id] = len(user_id)
        response = session.get(
            f"{replica.get_base}/get", params={"user_id": user_id}, timeout=TIMEOUT_S
        )
        assert_sane(response, GET_STATUSES)
        size = len(user_id.encode("utf-8", "surrogatepass"))
        if not user_id or size > MAX_KEY_BYTES:
            assert response.status_code == 400
            assert response.json()["error"].startswith("user_id")
        elif user_id in known:
            assert response.status_code == 200, (user_id, response.text)
            assert response.json()["result"]["spp"] == known[user_id]

    run()


@fuzz_settings(150)
@given(st.text(string.printable + "%é\x00", max_size=60))
def test_raw_query_strings_never_break_the_getter(replica, query):
    """Bad percent-escapes, repeated and empty parameters, encoded invalid UTF-8."""
    url = f"{replica.get_base}/get?{quote(query, safe='%&=+;/?')}"
    response = requests.get(url, timeout=TIMEOUT_S)
    assert_sane(response, GET_STATUSES)


methods = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"])
paths = st.sampled_from(
    [
        "/set",
        "/set/",
        "/get",
        "/backup",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/",
        "//set",
        "/set//",
        "/SET",
        "/set/x",
        "/set?x=1",
        "/%73et",
        "/..%2fset",
        "/set%00",
    ]
) | st.text(string.ascii_letters + string.digits + "/._-~%", max_size=20).map(
    lambda text: "/" + text
)


def test_any_method_and_path_is_never_a_5xx(replica, session):
    """Routes of the wrong port and unknown routes are 404, wrong methods 405, as JSON."""
    before = replica.backup_rows()

    @fuzz_settings(150)
    @given(st.sampled_from(["setter", "getter"]), methods, paths)
    def run(port, method, path):
        base = replica.setter_base if port == "setter" else replica.get_base
        body = (
            b'{"user_id": "route-probe", "spp": 7}' if method in ("POST", "PUT", "PATCH") else None
        )
        response = session.request(
            method,
            base + path,
            data=body,
            timeout=TIMEOUT_S,
            headers={"Authorization": AUTH_HEADER},
            stream=True,
        )
        try:
            assert response.status_code < 500, (method, path, response.status_code)
            if method == "HEAD" or (method == "OPTIONS" and response.status_code == 200):
                return
            if response.status_code >= 400:
                assert_error_body(response)
            if response.status_code == 405:
                assert response.headers["Allow"]
        finally:
            response.close()

    run()
    # only a POST to the setter's /set may have written, and only route-probe
    after = replica.backup_rows()
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= {"route-probe"}, changed
