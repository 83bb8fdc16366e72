"""The bus process over ZMQ: publish, fetch, seek, restarts, bad input, a failing disk."""

from __future__ import annotations

import time

import msgpack
import pytest
import zmq

from actors.bus import messages as bus_messages
from actors.bus.messages import BusFetch, BusInfo, BusPublish, BusSeek
from actors.runtime import protocol
from actors.runtime.client import Client, RemoteError
from actors.runtime.testing import wait_until
from tests.bus.tiny_disk import bus_on_a_tiny_disk

STREAM = "test-stream"


@pytest.fixture
def bus(cluster):
    return cluster.bus()


def publish_all(client: Client, payloads: list[bytes], origin: str = "t") -> list[list]:
    """Publish pipelined; returns each reply's [position, time_ms] (or the RemoteError)."""
    ids = [client.send(BusPublish(STREAM, origin, i, data)) for i, data in enumerate(payloads)]
    replies = {}
    while len(replies) < len(ids):
        request_id, message = client.receive()
        replies[request_id] = message
    results = []
    for request_id in ids:
        message = replies[request_id]
        results.append(
            message.result
            if isinstance(message, protocol.Ok)
            else RemoteError(message.code, message.reason)
        )
    return results


def fetch_all(client: Client) -> list[list]:
    records, position = [], 0
    while True:
        _log_id, end, chunk = client.call(BusFetch(STREAM, position, 1000))
        records += chunk
        position += len(chunk)
        if position >= end or not chunk:
            return records


def test_publish_fetch_seek_round_trip(bus):
    with Client(bus.url) as client:
        payloads = [f"payload-{i}".encode() * 10 for i in range(500)]
        results = publish_all(client, payloads)
        assert [r[0] for r in results] == list(range(500))
        records = fetch_all(client)
        assert [r[4] for r in records] == payloads
        assert all(r[2] == "t" for r in records)
        log_id, end = client.call(BusInfo(STREAM))
        assert end == 500 and log_id
        middle_time = records[250][1]
        position = client.call(BusSeek(STREAM, middle_time))
        assert records[position][1] == middle_time and position <= 250
        assert client.call(BusSeek(STREAM, records[-1][1] + 1)) == 500


def test_records_are_fanned_out_after_they_are_durable(bus):
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.linger = 0
    sub.setsockopt(zmq.SUBSCRIBE, bus_messages.topic_for(STREAM))
    sub.connect(bus.pub_url)
    try:
        with Client(bus.url) as client:
            client.call(BusInfo(STREAM))  # creates the stream, starts its heartbeats
            wait_until(lambda: sub.poll(100), 10, "a heartbeat")  # subscription is live
            publish_all(client, [b"one", b"two"])
            seen = []
            deadline = time.monotonic() + 10
            while len(seen) < 2 and time.monotonic() < deadline:
                if sub.poll(200):
                    _topic, body = sub.recv_multipart()
                    _, message = protocol.decode(body)
                    if isinstance(message, bus_messages.BusRecord):
                        seen.append((message.position, message.data))
            assert seen == [(0, b"one"), (1, b"two")]
    finally:
        sub.close()


def test_restart_keeps_every_acknowledged_record(cluster):
    bus = cluster.bus()
    with Client(bus.url) as client:
        publish_all(client, [b"x" * 100] * 300)
    bus.kill9()
    bus.start()
    bus.wait_listening()
    with Client(bus.url) as client:
        assert len(fetch_all(client)) == 300
        assert publish_all(client, [b"after"])[0][0] == 300


@pytest.mark.parametrize(
    "frames",
    [
        [b"not msgpack \xc1"],
        [msgpack.packb({"a": 1})],
        [msgpack.packb([99, "bus_info", 1, STREAM])],
        [msgpack.packb([protocol.VERSION, "no_such_type", 1])],
        [msgpack.packb([protocol.VERSION, "bus_info", 1])],
        [msgpack.packb([protocol.VERSION, "bus_info", 1, STREAM, "extra", "more"])],
        [msgpack.packb([protocol.VERSION, "bus_publish", 1, STREAM, 5, "seq", "not bytes"])],
        [msgpack.packb([protocol.VERSION, "bus_publish", 1, "../etc", "o", 1, b"x"])],
        [msgpack.packb([protocol.VERSION, "bus_fetch", 1, STREAM, "zero", None])],
        [msgpack.packb([protocol.VERSION, "get", 1, "k"])],
        [b"a", b"b", b"c"],
    ],
)
def test_malformed_requests_get_an_error_and_change_nothing(bus, frames):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(bus.url)
    try:
        with Client(bus.url) as client:
            _, end_before = client.call(BusInfo(STREAM))
            sock.send_multipart(frames)
            assert sock.poll(5000), "the bus answered nothing"
            _, reply = protocol.decode(sock.recv())
            assert isinstance(reply, protocol.Error)
            assert client.call(BusInfo(STREAM))[1] == end_before
    finally:
        sock.close()
    assert bus.running()


def test_an_oversized_frame_drops_that_connection_only(bus):
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(bus.url)
    try:
        sock.send(b"\0" * (protocol.MAX_FRAME_BYTES + 1))
        assert not sock.poll(500)
        with Client(bus.url) as client:
            assert client.call(BusInfo(STREAM))[1] == 0
    finally:
        sock.close()
    assert bus.running()


def _publish_until_refused(client: Client, limit: int = 5000) -> tuple[int, RemoteError]:
    acked = 0
    for _ in range(limit):
        result = publish_all(client, [b"z" * 2000])[0]
        if isinstance(result, RemoteError):
            return acked, result
        assert result[0] == acked
        acked += 1
    pytest.fail("the disk never filled up")


def test_a_full_disk_refuses_publishes_and_recovers(cluster, tmp_path):
    with bus_on_a_tiny_disk(cluster, tmp_path) as (bus, filler):
        with Client(bus.url) as client:
            acked, error = _publish_until_refused(client)
            assert error.code == protocol.ErrorCode.UNAVAILABLE
            assert "cannot write" in bus.output()
            filler.unlink()
            wait_until(
                lambda: not isinstance(publish_all(client, [b"back"])[0], RemoteError),
                10,
                "publishes to work again once space returned",
            )
            records = fetch_all(client)
            assert len(records) == acked + 1 and records[-1][4] == b"back"
        assert bus.stop() == 0
        bus.start()
        bus.wait_listening()
        with Client(bus.url) as client:
            assert len(fetch_all(client)) == acked + 1  # nothing refused crept in
        assert "cut" not in bus.output().split("bus listening")[-1]
