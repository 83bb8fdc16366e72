"""hypothesis over /set bodies: arbitrary bytes, JSON values, objects with random and
repeated keys, odd and corrupted bodies; a rejected body changes nothing (the ledger
compares the whole map, read through /backup).
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.grades.fuzz.oracle import (
    ALLOWED,
    SET_STATUSES,
    Ledger,
    acceptable,
    assert_error_body,
    assert_sane,
    check_set,
    encode_pairs,
    examples,
    fuzz_settings,
    json_values,
    object_pairs,
    post_set,
    valid_pairs,
)
from web.grades.setter import MAX_BODY_BYTES

# --- hypothesis: /set bodies -------------------------------------------------------


def test_arbitrary_bytes_are_refused_and_change_nothing(replica, session):
    ledger = Ledger(replica)

    @fuzz_settings(150)
    @given(
        st.binary(max_size=200)
        | st.binary(min_size=MAX_BODY_BYTES - 8, max_size=MAX_BODY_BYTES + 8)
    )
    def run(body):
        response = post_set(replica, session, body)
        assert_sane(response, SET_STATUSES - {200, 401, 415})
        assert response.status_code == (413 if len(body) > MAX_BODY_BYTES else 400)
        ledger.record(response)

    run()
    ledger.verify()


def test_arbitrary_json_values_follow_the_rules(replica, session):
    """Any JSON value (NaN and Infinity included, as json.dumps writes them)."""
    ledger = Ledger(replica)

    @fuzz_settings(150)
    @given(
        json_values | st.dictionaries(st.sampled_from(ALLOWED), json_values, max_size=5),
        st.booleans(),
    )
    def run(value, ensure_ascii):
        body = json.dumps(value, ensure_ascii=ensure_ascii).encode()
        expected = acceptable(list(value.items())) if isinstance(value, dict) else None
        check_set(replica, ledger, session, body, expected)

    run()
    ledger.verify()


def test_objects_with_random_and_repeated_keys_follow_the_rules(replica, session):
    """Valid bodies merge as documented; any bad field, unknown key or key given twice is a
    400 that names it and changes nothing."""
    ledger = Ledger(replica)
    spacing = st.sampled_from([(", ", ": "), (",", ":"), (" ,\n", " :\t"), ("\r\n,", "\n:")])

    @fuzz_settings(250)
    @given(object_pairs(), spacing, st.booleans())
    def run(pairs, separators, ensure_ascii):
        body = encode_pairs(pairs, separators, ensure_ascii)
        expected = acceptable(pairs)
        response = check_set(replica, ledger, session, body, expected)
        if response.status_code == 400:
            keys = [key for key, _ in pairs]
            repeated = {key for key in keys if keys.count(key) > 1}
            unknown = set(keys) - set(ALLOWED)
            message = assert_error_body(response)
            if repeated and not unknown:
                # the first problem found wins; a repeated key is named when it is the only one
                assert message.split(":")[0] in repeated | set(ALLOWED) | {"body"}, message

    run()
    ledger.verify()


ODD_BODIES = [
    b"",
    b" ",
    b"null",
    b"{}",
    b"[]",
    b"[" * 10_000,  # deep nesting: 413 (over the limit) before any parsing
    b"[" * 4000,
    b"[" * 2000 + b"]" * 2000,
    b'{"user_id": "n", "spp": ' + b"[" * 2000 + b"]" * 2000 + b"}",
    b'{"a":' * 800 + b"1" + b"}" * 800,
    b'{"user_id": "n", "spp": ' + b"9" * 400 + b"}",  # 10**400-ish
    b'{"user_id": "n", "spp": 1' + b"0" * 4060 + b"}",  # just within the limit
    b'{"user_id": "n", "spp": 1' + b"0" * 5000 + b"}",  # more digits than int() allows
    b'{"user_id": "n", "spp": 1e400}',
    b'{"user_id": "n", "spp": NaN}',
    b'{"user_id": "n", "spp": Infinity}',
    b'{"user_id": "n", "spp": -Infinity}',
    b'{"user_id": "n", "spp": 0x10}',
    b'{"user_id": "n", "spp": +1}',
    b'{"user_id": "n", "spp": 01}',
    b'{"user_id": "n", "spp": 1.}',
    b'{"user_id": "n", "spp": .5}',
    b'{"user_id": "n", "spp": 1.0}',
    b'{"user_id": "n", "spp": -0.0}',
    b'{"user_id": "n", "spp": 1, "spp": 1}',
    b'{"user_id": "n", "user_id": "n"}',
    b'{"user_id": "n", "\\u0073pp": 1, "spp": 2}',  # the same key, escaped once
    b'{"user_id": "n\\":", "spp": 1, "spp": 2}',
    b'{"user_id": "n", "spp": 1,}',
    b'{"user_id": "n" "spp": 1}',
    b"{'user_id': 'n'}",
    b'{"user_id": "n"} /* comment */',
    b'{"user_id": "n"}{"user_id": "n"}',
    b'{"user_id": "n"}\x00',
    b'{"user_id": "\\ud800"}',  # a lone surrogate
    b'{"user_id": "\\udc00\\ud800"}',  # a pair in the wrong order
    b'{"user_id": "\\u"}',
    b'{"user_id": "\\x41"}',
    b'{"user_id": "a\tb"}',  # a raw control character in a string
    b'{"user_id": "\xff"}',  # invalid UTF-8
    b'{"user_id": "\xc0\x80"}',  # overlong NUL
    b'{"user_id": "\xed\xa0\x80"}',  # an encoded surrogate
    b'{"user_id": "\xe2\x82"}',  # truncated sequence
    b'{"user_id": "\xe9t\xe9"}',  # latin-1
    b'\xef\xbb\xbf{"user_id": "n"}',  # UTF-8 BOM
    '{"user_id": "n"}'.encode("utf-16"),
    '{"user_id": "n"}'.encode("utf-16-le"),
    '{"user_id": "n"}'.encode("utf-16-be"),
    '{"user_id": "n"}'.encode("utf-32"),
    b'{"user_id": ' + json.dumps("x" * 129).encode() + b"}",
    b'{"user_id": ' + json.dumps("é" * 65, ensure_ascii=False).encode() + b"}",
    b'{"user_id": ' + json.dumps("é" * 65).encode() + b"}",  # as \u escapes: still 130 bytes
]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("body", ODD_BODIES, ids=lambda body: repr(body[:40]))
def test_odd_bodies_are_400_or_413_and_change_nothing(replica, session, body, chunked):
    before = replica.record("n")
    data = iter([body[i : i + 1000] for i in range(0, len(body), 1000)]) if chunked else body
    response = post_set(replica, session, data)
    assert ("Transfer-Encoding" in response.request.headers) == chunked
    assert_sane(response, {400, 413})
    assert response.status_code == (413 if len(body) > MAX_BODY_BYTES else 400)
    assert replica.record("n") == before


def corrupt(body: bytes, how: str, data) -> bytes:
    """A valid body made invalid in one way."""
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    if how in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
        return body.decode().encode(how)
    if how == "bad utf-8":
        at = body.index(b'"user_id"') + 1
        return (
            body[:at]
            + data.draw(
                st.sampled_from(
                    [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xe2\x82", b"\x80", b"\xfe"]
                )
            )
            + body[at:]
        )
    if how == "number":
        literal = data.draw(
            st.sampled_from(
                [
                    b"NaN",
                    b"Infinity",
                    b"-Infinity",
                    b"1e400",
                    b"9" * 400,
                    b"1.5",
                    b"0x1",
                    b"+1",
                    b"01",
                    b"true",
                    b"null",
                    b'"1"',
                ]
            )
        )
        return re.sub(rb"(-?\d+)(?=\s*[,}])", lambda m: literal, body, count=1)
    if how == "nest":
        depth = data.draw(st.integers(1, 3000))
        return b"[" * depth + body + b"]" * depth
    if how == "trailing":
        return body + data.draw(st.sampled_from([b",", b"}", b"x", b"{}", b"\x00", b"//"]))
    if how == "truncate":
        return body[: data.draw(st.integers(0, len(body) - 1))]
    if how == "repeat":
        key = data.draw(st.sampled_from(re.findall(rb'"(\w+)"\s*:', body)))
        return body[:-1] + b', "' + key + b'": 1}'
    raise AssertionError(how)


def test_corrupted_valid_bodies_are_400_and_change_nothing(replica, session):
    ledger = Ledger(replica)
    ways = [
        "bom",
        "utf-16",
        "utf-16-le",
        "utf-16-be",
        "utf-32",
        "bad utf-8",
        "number",
        "nest",
        "trailing",
        "truncate",
        "repeat",
    ]

    @fuzz_settings(150)
    @given(valid_pairs(), st.sampled_from(ways), st.data())
    def run(pairs, how, data):
        if how == "number" and len(pairs) == 1:
            how = "bom"  # no number to replace
        body = corrupt(encode_pairs(pairs), how, data)
        check_set(replica, ledger, session, body, None)

    run()
    assert ledger.rejected >= examples(150) // 2
    ledger.verify()
