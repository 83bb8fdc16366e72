"""Tests for actors.runtime.protocol: message round trips and rejection of malformed frames."""

from __future__ import annotations

from typing import NamedTuple

import msgpack
import pytest

from actors.bus.messages import topic_for
from actors.grades import messages
from actors.runtime import protocol
from actors.runtime.protocol import VERSION, Error, ErrorCode, Ok, ProtocolError, decode, encode

# A sample value per annotated field type; the protocol itself does not check field
# types, so any msgpack-able value of the right kind exercises the framing.
SAMPLE_BY_TYPE = {
    "str": "naïve-😀",
    "int": -(2**40) + 7,
    "bool": True,
    "bytes": b"\x00\xff\x80payload",
    "list": [1, [2, b"\x01", "x"], None],
    "Any": {"rows": [["u1", [1, 2, 3, 4, 5, 6, 7, 8]]], "done": False},
}

ALL_TAGS = sorted(protocol._MESSAGES)


def sample_fields(cls) -> list:
    """A sample value for every field of cls (defaults included), by its annotation's kind."""
    annotations = cls.__annotations__  # NamedTuple keeps them as ForwardRef objects
    return [
        SAMPLE_BY_TYPE[getattr(annotations[n], "__forward_arg__", annotations[n]).split("[")[0]]
        for n in cls._fields
    ]


def sample_message(cls):
    return cls(*sample_fields(cls))


def frame(*items) -> bytes:
    return msgpack.packb(list(items), use_bin_type=True)


@pytest.mark.parametrize("tag", ALL_TAGS)
@pytest.mark.parametrize("request_id", [0, 1, 2**32 + 5, 2**63 - 1])
def test_every_message_round_trips_with_its_request_id(tag, request_id):
    message = sample_message(protocol._MESSAGES[tag])

    got_id, got = decode(encode(message, request_id))

    assert got_id == request_id
    assert type(got) is type(message)
    assert got == message


@pytest.mark.parametrize("tag", ALL_TAGS)
def test_message_tag_is_the_second_item_of_the_frame(tag):
    cls = protocol._MESSAGES[tag]

    raw = msgpack.unpackb(encode(sample_message(cls), 9), raw=False)

    assert raw[:3] == [VERSION, tag, 9]
    assert len(raw) == 3 + len(cls._fields)


def test_encode_defaults_request_id_to_zero():
    assert decode(encode(messages.Status()))[0] == 0


def test_error_retry_after_defaults_to_zero():
    assert Error(ErrorCode.UNAVAILABLE, "busy").retry_after_s == 0


def test_error_without_retry_after_on_the_wire_decodes_with_the_default():
    _, message = decode(frame(VERSION, "error", 3, ErrorCode.NOT_FOUND, "no such user"))

    assert message == Error(ErrorCode.NOT_FOUND, "no such user", 0)


def test_error_with_retry_after_round_trips():
    message = Error(ErrorCode.UNAVAILABLE, "catching up", retry_after_s=5)

    assert decode(encode(message, 4)) == (4, message)


def test_ok_result_keeps_bytes_and_str_apart():
    _, message = decode(encode(Ok([b"raw", "text"])))

    assert message.result == [b"raw", "text"]
    assert type(message.result[0]) is bytes and type(message.result[1]) is str


MALFORMED_BODIES = {
    "empty": b"",
    "reserved byte": b"\xc1",
    "truncated array": b"\x93\x01",
    "trailing bytes": frame(VERSION, "ok", 0, 1) + b"\x00",
    "garbage text": b"hello, world",
    "map instead of array": msgpack.packb({"version": 1, "tag": "ok"}),
    "map with a list key": b"\x81\x90\x01",
    "integer": msgpack.packb(1),
    "string": msgpack.packb("ok"),
    "ext type": b"\xc7\x01\x05x",
    "empty array": frame(),
    "one item": frame(VERSION),
    "two items": frame(VERSION, "ok"),
    "version 0": frame(0, "ok", 0, 1),
    "version 2": frame(2, "ok", 0, 1),
    "version as string": frame("1", "ok", 0, 1),
    "version nil": frame(None, "ok", 0, 1),
    "unknown tag": frame(VERSION, "launch_missiles", 0),
    "tag with other case": frame(VERSION, "OK", 0, 1),
    "tag as bytes": frame(VERSION, b"ok", 0, 1),
    "tag as int": frame(VERSION, 1, 0, 1),
    "tag as list": frame(VERSION, ["ok"], 0, 1),
    "request_id float": frame(VERSION, "ok", 1.0, 1),
    "request_id string": frame(VERSION, "ok", "1", 1),
    "request_id nil": frame(VERSION, "ok", None, 1),
    "request_id true": frame(VERSION, "ok", True, 1),
    "request_id false": frame(VERSION, "ok", False, 1),
    "ok without result": frame(VERSION, "ok", 0),
    "ok with two results": frame(VERSION, "ok", 0, 1, 2),
    "error with one field": frame(VERSION, "error", 0, "internal"),
    "error with four fields": frame(VERSION, "error", 0, "internal", "x", 1, 2),
    "status with a field": frame(VERSION, "status", 0, 1),
    "set with two fields": frame(VERSION, "set", 0, "u", [1, None, None, None]),
    "set with five fields": frame(VERSION, "set", 0, "u", [1, None, None, None], 5, "t", 6),
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_decode_rejects_malformed_body_with_protocol_error(body):
    with pytest.raises(ProtocolError):
        decode(body)


@pytest.mark.parametrize("tag", ALL_TAGS)
def test_decode_rejects_one_field_too_many_for_every_message(tag):
    fields = sample_fields(protocol._MESSAGES[tag])

    with pytest.raises(ProtocolError, match="fields"):
        decode(frame(VERSION, tag, 1, *fields, "extra"))


@pytest.mark.parametrize("tag", [t for t in ALL_TAGS if protocol._MESSAGES[t]._fields])
def test_decode_rejects_one_required_field_too_few_for_every_message(tag):
    cls = protocol._MESSAGES[tag]
    required = len(cls._fields) - len(cls._field_defaults)
    fields = sample_fields(cls)[: required - 1]

    with pytest.raises(ProtocolError, match="fields"):
        decode(frame(VERSION, tag, 1, *fields))


def test_protocol_error_is_a_value_error():
    assert issubclass(ProtocolError, ValueError)


def test_decode_rejects_boolean_version():
    with pytest.raises(ProtocolError):
        decode(frame(True, "ok", 0, 1))


def test_decode_rejects_float_version():
    with pytest.raises(ProtocolError):
        decode(frame(1.0, "ok", 0, 1))


def test_topic_of_a_stream_is_not_a_prefix_of_a_longer_stream_topic():
    assert not topic_for("ab").startswith(topic_for("a"))


def test_topic_starts_with_the_utf8_stream_name():
    assert topic_for("grädes") == "grädes".encode() + b"\0"


def test_tagged_names_the_class_on_the_wire_and_registers_it():
    for tag, cls in protocol._MESSAGES.items():
        assert cls.TAG == tag
        assert protocol.tag_of(sample_message(cls)) == tag


def test_tagged_refuses_a_tag_another_class_has():
    with pytest.raises(ValueError, match="taken by"):

        @protocol.tagged("ok")
        class Impostor(NamedTuple):
            result: int
