"""Tests for http/validation.py: strict /set bodies and errors that name the field."""

from __future__ import annotations

import json

import pytest

from web.common.validation import InvalidInput
from web.grades.validation import check_user_id, parse_set_body

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)


def body(**fields) -> bytes:
    return json.dumps(fields, ensure_ascii=False).encode()


VALID = [
    (body(user_id="u"), ("u", [None, None, None, None])),
    (body(user_id="u", spp=23), ("u", [None, 23, None, None])),
    (
        body(user_id="3333", postpaid_limit=1111, spp=23123, shipping_fee=333, return_fee=444),
        ("3333", [1111, 23123, 333, 444]),
    ),
    (body(user_id="u", return_fee=0, postpaid_limit=0), ("u", [0, None, None, 0])),
    (body(user_id="u", shipping_fee=-5), ("u", [None, None, -5, None])),
    (
        body(user_id="u", spp=INT64_MAX, return_fee=INT64_MIN),
        ("u", [None, INT64_MAX, None, INT64_MIN]),
    ),
    (b'{"user_id":"u","spp":-0}', ("u", [None, 0, None, None])),
    (body(user_id="ünïcødé 😀"), ("ünïcødé 😀", [None, None, None, None])),
    (b'{"user_id":"\\u00fc\\ud83d\\ude00"}', ("ü😀", [None, None, None, None])),
    (body(user_id="x" * 128), ("x" * 128, [None, None, None, None])),
    (body(user_id="é" * 64), ("é" * 64, [None, None, None, None])),  # 128 bytes
    (body(user_id="😀" * 32), ("😀" * 32, [None, None, None, None])),  # 128 bytes
    (b' \t\r\n{ "spp" : 1 , "user_id" : "u" }\n', ("u", [None, 1, None, None])),
]


@pytest.mark.parametrize("raw, expected", VALID, ids=[str(i) for i in range(len(VALID))])
def test_valid_body_parses_to_user_id_and_values(raw, expected):
    assert parse_set_body(raw) == expected


INVALID = {
    "float": (b'{"user_id":"u","spp":1.0}', "spp:"),
    "float exponent": (b'{"user_id":"u","spp":1e2}', "spp:"),
    "fraction": (b'{"user_id":"u","shipping_fee":0.5}', "shipping_fee:"),
    "string number": (b'{"user_id":"u","return_fee":"4"}', "return_fee:"),
    "true": (b'{"user_id":"u","spp":true}', "spp:"),
    "false": (b'{"user_id":"u","postpaid_limit":false}', "postpaid_limit:"),
    "null": (b'{"user_id":"u","spp":null}', "spp:"),
    "array": (b'{"user_id":"u","spp":[1]}', "spp:"),
    "object": (b'{"user_id":"u","spp":{"v":1}}', "spp:"),
    "above int64": (b'{"user_id":"u","spp":9223372036854775808}', "spp:"),
    "below int64": (b'{"user_id":"u","spp":-9223372036854775809}', "spp:"),
    "huge int": (b'{"user_id":"u","spp":' + b"9" * 5000 + b"}", "spp:"),
    "unknown field": (b'{"user_id":"u","grade":1}', "grade:"),
    "field in other case": (b'{"user_id":"u","SPP":1}', "SPP:"),
    "missing user_id": (b'{"spp":1}', "user_id:"),
    "empty object": (b"{}", "user_id:"),
    "empty user_id": (b'{"user_id":""}', "user_id:"),
    "129-byte user_id": (body(user_id="x" * 129), "user_id:"),
    "65 two-byte chars user_id": (body(user_id="é" * 65), "user_id:"),
    "numeric user_id": (b'{"user_id":3333}', "user_id:"),
    "null user_id": (b'{"user_id":null}', "user_id:"),
    "array body": (b'[{"user_id":"u"}]', "body:"),
    "string body": (b'"u"', "body:"),
    "number body": (b"1", "body:"),
    "null body": (b"null", "body:"),
    "malformed JSON": (b'{"user_id":"u",}', "body:"),
    "unterminated": (b'{"user_id":"u"', "body:"),
    "single quotes": (b"{'user_id':'u'}", "body:"),
    "NaN": (b'{"user_id":"u","spp":NaN}', "body:"),
    "leading zero": (b'{"user_id":"u","spp":01}', "body:"),
    "trailing garbage": (b'{"user_id":"u"} x', "body:"),
    "two objects": (b'{"user_id":"u"}{"user_id":"v"}', "body:"),
    "trailing NUL": (b'{"user_id":"u"}\x00', "body:"),
    "invalid UTF-8": (b'{"user_id":"\xff"}', "body:"),
    "encoded surrogate": (b'{"user_id":"\xed\xa0\x80"}', "body:"),
    "lone surrogate escape": (b'{"user_id":"\\udc00"}', "body:"),
    "raw newline in string": (b'{"user_id":"a\nb"}', "body:"),
    "UTF-8 BOM": (b'\xef\xbb\xbf{"user_id":"u"}', "body:"),
    "UTF-16 body": ('{"user_id":"u"}'.encode("utf-16"), "body:"),
    "duplicate spp": (b'{"user_id":"u","spp":1,"spp":2}', "spp:"),
    "duplicate spp same value": (b'{"user_id":"u","spp":1,"spp":1}', "spp:"),
    "duplicate via escape": (b'{"user_id":"u","sp\\u0070":1,"spp":2}', "spp:"),
    "duplicate user_id": (b'{"user_id":"u","user_id":"v"}', "user_id:"),
    "empty body": (b"", "body:"),
    "whitespace body": (b"  \n", "body:"),
    "deeply nested value": (b'{"user_id":"u","spp":' + b"[" * 5000 + b"]" * 5000 + b"}", "spp:"),
    "deeply nested unknown": (b'{"user_id":"u","x":' + b"[" * 5000 + b"]" * 5000 + b"}", "x:"),
}


@pytest.mark.parametrize("raw, prefix", INVALID.values(), ids=INVALID.keys())
def test_invalid_body_raises_invalid_body_naming_the_field(raw, prefix):
    with pytest.raises(InvalidInput) as caught:
        parse_set_body(raw)

    assert str(caught.value).startswith(prefix)


def test_unknown_field_message_lists_the_allowed_fields():
    with pytest.raises(InvalidInput) as caught:
        parse_set_body(b'{"user_id":"u","grade":1}')

    assert "spp" in str(caught.value) and "postpaid_limit" in str(caught.value)


def test_invalid_body_is_a_value_error():
    assert issubclass(InvalidInput, ValueError)


@pytest.mark.parametrize("user_id", ["u", "x" * 128, "é" * 64])
def test_check_user_id_returns_a_valid_id(user_id):
    assert check_user_id(user_id) == user_id


@pytest.mark.parametrize("user_id", ["", "x" * 129, "é" * 65, "\ud800" * 43])
def test_check_user_id_rejects_empty_or_too_long(user_id):
    with pytest.raises(InvalidInput, match="^user_id:"):
        check_user_id(user_id)
