"""Hostile ZMQ input to the storage actor and the broker: answered or dropped, never fatal."""

from __future__ import annotations

import threading

import msgpack
import pytest
import zmq

from actors.bus import messages as bus_messages
from actors.grades.messages import Get, Set, Status
from actors.runtime import protocol
from actors.runtime.client import Client
from actors.runtime.testing import wait_until

V = protocol.VERSION


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    from actors.grades.testing import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("input"))
    yield cluster.replica(1, bus=None)
    assert not cluster.stop_all()


def raw_dealer(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(endpoint)
    return sock


@pytest.mark.parametrize(
    "frames, code",
    [
        ([b"\xc1 not msgpack"], "protocol"),
        ([msgpack.packb("a string")], "protocol"),
        ([msgpack.packb([V + 1, "get", 1, "k"])], "protocol"),
        ([msgpack.packb([V, "launch_missiles", 1])], "protocol"),
        ([msgpack.packb([V, "get", 1])], "protocol"),
        ([msgpack.packb([V, "batch", 0, [[V, "batch", 0, []]]])], "protocol"),
        ([msgpack.packb([V, "batch", 0, "not a list"])], "protocol"),
        ([msgpack.packb([V, "set", 1, "k", [1.5, None, None, None], 0])], "bad_request"),
        ([msgpack.packb([V, "set", 1, "k", [1, 2], 0])], "bad_request"),
        ([msgpack.packb([V, "set", 1, "", [1, None, None, None], 0])], "bad_request"),
        ([msgpack.packb([V, "set", 1, ["k"], [1, None, None, None], 0])], "bad_request"),
        ([msgpack.packb([V, "set", 1, "k", [2**63, None, None, None], 0])], "bad_request"),
        ([msgpack.packb([V, "snapshot_next", 1, "id", "many"])], "not_found"),
        ([msgpack.packb([V, "bus_fetch", 1, "s", 0, 1])], "protocol"),
    ],
)
def test_storage_answers_malformed_messages_and_applies_nothing(replica, frames, code):
    with Client(replica.storage_endpoint) as client:
        client.call(Set("sentinel", [1, 2, 3, 4], 0))
        rows_before = client.call(Status())["rows"]
        sock = raw_dealer(replica.storage_endpoint)
        try:
            sock.send_multipart(frames)
            assert sock.poll(5000), "no answer"
            _, reply = protocol.decode(sock.recv())
        finally:
            sock.close()
        assert isinstance(reply, protocol.Error) and reply.code == code, reply
        assert client.call(Status())["rows"] == rows_before
        assert client.call(Get("sentinel")) == ["sentinel", 1, 2, 3, 4]


def test_storage_survives_oversized_and_multipart_garbage(replica):
    storage_pid = replica.child("storage").pid
    oversized, multipart = (
        raw_dealer(replica.storage_endpoint),
        raw_dealer(replica.storage_endpoint),
    )
    try:
        oversized.send(b"x" * (protocol.MAX_FRAME_BYTES + 10))  # drops this connection
        multipart.send_multipart([b"a", b"b", b"c", b"d"])
        assert multipart.poll(5000), "no answer to a multipart message"
        _, reply = protocol.decode(multipart.recv())
        assert isinstance(reply, protocol.Error) and reply.code == "protocol", reply
        wait_until(
            lambda: "4 body frames, expected 1" in replica.output(),
            10,
            "the multipart message to be refused with a log line",
        )
    finally:
        oversized.close()
        multipart.close()
    with Client(replica.storage_endpoint) as client:
        assert client.call(Set("still-here", [1, None, None, None], 0))[1] == 1
    assert replica.child("storage").pid == storage_pid


class PlayedBus:
    """The test speaks the bus protocol on the bus's addresses, garbage included."""

    def __init__(self, url: str, pub_url: str):
        ctx = zmq.Context.instance()
        self.router = ctx.socket(zmq.ROUTER)
        self.router.linger = 0
        self.router.bind(url)
        self.pub = ctx.socket(zmq.PUB)
        self.pub.linger = 0
        self.pub.bind(pub_url)
        self.records: list[list] = []
        self.stop = threading.Event()
        self.garbage_replies = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        topic = bus_messages.topic_for("grades")
        while not self.stop.is_set():
            self.pub.send_multipart(
                [topic, protocol.encode(bus_messages.BusHeartbeat("played-log", len(self.records)))]
            )
            if not self.router.poll(100):
                continue
            ident, body = self.router.recv_multipart()
            request_id, message = protocol.decode(body)
            if self.garbage_replies:
                self.garbage_replies -= 1
                self.router.send_multipart(
                    [
                        ident,
                        protocol.encode(
                            protocol.Ok(["log", "not an int", [["garbage"]]]), request_id
                        ),
                    ]
                )
            elif isinstance(message, bus_messages.BusFetch):
                chunk = self.records[message.from_position :]
                self.router.send_multipart(
                    [
                        ident,
                        protocol.encode(
                            protocol.Ok(["played-log", len(self.records), chunk]), request_id
                        ),
                    ]
                )
            elif isinstance(message, bus_messages.BusInfo):
                self.router.send_multipart(
                    [
                        ident,
                        protocol.encode(protocol.Ok(["played-log", len(self.records)]), request_id),
                    ]
                )

    def publish_raw(self, body: bytes) -> None:
        self.pub.send_multipart([bus_messages.topic_for("grades"), body])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.router.close()
        self.pub.close()


def test_broker_drops_malformed_bus_traffic_and_keeps_working(cluster):
    bus = cluster.bus(start=False)
    played = PlayedBus(bus.url, bus.pub_url)
    try:
        played.garbage_replies = 3  # the first fetches come back garbled
        replica = cluster.replica(2, bus)
        broker_pid = replica.child("broker").pid
        for body in [
            b"\xc1",
            msgpack.packb([V, "bus_record", 0, "pos", 1, "1", 2, b"x"]),
            msgpack.packb([V, "bus_record", 0, 0, 1, 7, 2, "not bytes"]),
            msgpack.packb([V, "bus_heartbeat", 0, None, "end"]),
            msgpack.packb([V, "unknown", 0]),
        ]:
            played.publish_raw(body)
        good = msgpack.packb([1, [["from-bus", 123 << 22, [5, None, None, None]]]])
        played.records.append([0, 1, "1", 99, good])
        played.publish_raw(protocol.encode(bus_messages.BusRecord(0, 1, "1", 99, good)))
        wait_until(lambda: replica.record("from-bus"), 20, "the well-formed record to apply")
        assert replica.record("from-bus")["postpaid_limit"] == 5
        assert replica.child("broker").pid == broker_pid
        assert "malformed" in replica.output()
    finally:
        played.close()
