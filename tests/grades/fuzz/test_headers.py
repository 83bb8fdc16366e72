"""hypothesis over what surrounds a body: content types, chunked transfer, credentials."""

from __future__ import annotations

import base64
import string

from hypothesis import given
from hypothesis import strategies as st

from actors.grades.testing import AUTH
from tests.grades.fuzz.oracle import (
    AUTH_HEADER,
    SET_STATUSES,
    Ledger,
    acceptable,
    assert_sane,
    check_set,
    encode_pairs,
    fuzz_settings,
    object_pairs,
    post_set,
    valid_pairs,
)
from web.grades.setter import MAX_BODY_BYTES

# --- hypothesis: headers, chunks, credentials ----------------------------------------

content_types = (
    st.sampled_from(
        [
            "application/json",
            "application/json; charset=utf-8",
            "APPLICATION/JSON",
            "application/vnd.api+json",
            "application/merge-patch+json",
            "application/json ",
            "application/json;",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "json",
            "*/*",
            "application/*",
            ";",
            "",
            "application/json, text/plain",
            "application/json\t; q=1",
        ]
    )
    | st.text(string.ascii_letters + string.digits + " /+;=-.,*\t", max_size=40).map(
        str.lstrip
    )  # requests refuses a header value that starts with whitespace
)


def media_type_is_json(content_type: str | None) -> bool:
    """The setter's rule: no (or an empty) Content-Type is JSON, else application/json or
    */*+json, parameters ignored."""
    value = (content_type or "").strip(" \t")
    if not value:
        return True
    media = value.split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def test_content_types_follow_the_rules(replica, session):
    ledger = Ledger(replica)

    @fuzz_settings(150)
    @given(st.none() | content_types, valid_pairs() | object_pairs())
    def run(content_type, pairs):
        body = encode_pairs(pairs)
        # None: no Content-Type at all (requests adds none for a bytes body)
        headers = {"Content-Type": content_type} if content_type is not None else {}
        if media_type_is_json(content_type):
            check_set(replica, ledger, session, body, acceptable(pairs), headers=headers)
        else:
            response = post_set(replica, session, body, headers=headers)
            assert_sane(response, {415})
            ledger.record(response)

    run()
    ledger.verify()


def test_chunked_bodies_are_read_like_whole_ones(replica, session):
    """Transfer-Encoding: chunked (no Content-Length), in random pieces, even over the limit."""
    ledger = Ledger(replica)

    padding = (
        st.just(0) | st.integers(0, 100) | st.integers(MAX_BODY_BYTES - 200, 3 * MAX_BODY_BYTES)
    )

    @fuzz_settings(100)
    @given(object_pairs(), padding, st.lists(st.integers(1, 2000), min_size=1, max_size=8))
    def run(pairs, padding, sizes):
        body = b" " * padding + encode_pairs(pairs)  # leading whitespace is valid JSON

        def pieces():
            at, i = 0, 0
            while at < len(body):
                size = sizes[i % len(sizes)]
                yield body[at : at + size]
                at, i = at + size, i + 1

        response = post_set(replica, session, pieces())
        assert "Content-Length" not in response.request.headers
        assert response.request.headers["Transfer-Encoding"] == "chunked"
        assert_sane(response, SET_STATUSES - {401, 415})
        if len(body) > MAX_BODY_BYTES:
            assert response.status_code == 413
            ledger.rejected += 1
        elif acceptable(pairs) is None:
            assert response.status_code == 400
            ledger.rejected += 1
        else:
            ledger.accepted(response, *acceptable(pairs))

    run()
    ledger.verify()


latin1_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=60
)
authorization_values = (
    latin1_text
    | st.builds(
        lambda scheme, raw: f"{scheme} {base64.b64encode(raw).decode()}",
        st.sampled_from(["Basic", "basic", "BASIC", "Bearer", "Digest", ""]),
        st.binary(max_size=40),
    )
    | st.builds(
        lambda scheme, user, password: (
            scheme + " " + base64.b64encode(f"{user}:{password}".encode()).decode()
        ),
        st.sampled_from(["Basic", "basic"]),
        st.sampled_from(["test", "Test", "", "test "]),
        st.sampled_from(["test", "TEST", "", "test\x00", "tes", "testt"]),
    )
    | st.sampled_from(
        [
            "Basic",
            "Basic ",
            "Basic dGVzdDp0ZXN0=",
            "Basic dGVzdDp0ZXN0==",
            "Basic dGVzd Dp0ZXN0",
            "Basic !!!",
            "Basic dGVzdDp0ZXN0\t",
            "Basic\tdGVzdDp0ZXN0",
            "Basic  dGVzdDp0ZXN0",
            AUTH_HEADER + "x",
        ]
    )
).map(str.lstrip)  # requests refuses a header value that starts with whitespace


def test_wrong_credentials_are_401_whatever_the_body(replica, session):
    ledger = Ledger(replica)

    @fuzz_settings(150)
    @given(st.none() | authorization_values, valid_pairs() | object_pairs())
    def run(authorization, pairs):
        headers = {} if authorization is None else {"Authorization": authorization}
        response = post_set(replica, session, encode_pairs(pairs), headers=headers, auth=False)
        if authorization is not None and _is_right(authorization):
            ledger.record(response)  # a spelling the server may accept: the right credentials
            assert_sane(response, {200, 400})
            return
        assert_sane(response, {401})
        assert response.json() == {"error": "missing or wrong credentials"}
        ledger.record(response)

    run()
    ledger.verify()


def _is_right(authorization: str) -> bool:
    scheme, _, token = authorization.partition(" ")
    try:
        given_ = base64.b64decode(token.strip(), validate=True)
    except ValueError:
        return False
    return scheme.lower() == "basic" and given_ == f"{AUTH[0]}:{AUTH[1]}".encode()
