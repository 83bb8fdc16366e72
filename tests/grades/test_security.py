"""CurveZMQ: with GRADES_CURVE_DIR set, only holders of an authorized key get in."""

from __future__ import annotations

import pytest
import zmq
import zmq.auth

from actors.bus.messages import BusFetch, BusInfo, BusPublish
from actors.grades import messages
from actors.grades.config import Config
from actors.grades.testing import BACKENDS
from actors.runtime import protocol
from actors.runtime.client import Client, RemoteError
from actors.runtime.liveness import LivenessProbe
from actors.runtime.security import Curve, keygen
from actors.runtime.testing import wait_until

STREAM = "secure"


@pytest.fixture
def keys(tmp_path, monkeypatch):
    directory = keygen(tmp_path / "keys")
    monkeypatch.setenv("GRADES_CURVE_DIR", str(directory))  # processes and this test's clients
    return directory


@pytest.fixture
def secure_bus(cluster, keys):
    return cluster.bus()


def test_keygen_makes_server_and_client_keys_and_authorizes_the_client(keys):
    for name in (
        "server.key",
        "server.key_secret",
        "client.key",
        "client.key_secret",
        "authorized/client.key",
    ):
        assert (keys / name).exists(), name
    assert oct((keys / "client.key_secret").stat().st_mode)[-3:] == "600"


def test_an_authorized_client_publishes_and_fetches(secure_bus, keys):
    with Client(secure_bus.url, curve=Curve.load(keys)) as client:
        assert client.call(BusPublish(STREAM, "me", 1, b"hello"))[0] == 0
        _, end, records = client.call(BusFetch(STREAM, 0, 10))
        assert end == 1 and records[0][4] == b"hello"


def _plain_dealer(url: str, keys_dir=None, rogue_dir=None) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.linger = 0
    if rogue_dir is not None:  # a keypair of its own, not in authorized/
        public, secret = zmq.auth.load_certificate(rogue_dir / "rogue.key_secret")
        server_public, _ = zmq.auth.load_certificate(keys_dir / "server.key")
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = server_public
    sock.connect(url)
    return sock


@pytest.mark.parametrize("who", ["no keys", "unauthorized keys"])
def test_a_peer_without_an_authorized_key_can_neither_publish_nor_fetch(
    secure_bus, keys, tmp_path, who
):
    rogue = None
    if who == "unauthorized keys":
        rogue = tmp_path / "rogue"
        rogue.mkdir()
        zmq.auth.create_certificates(str(rogue), "rogue")
    sock = _plain_dealer(secure_bus.url, keys, rogue)
    try:
        sock.send(protocol.encode(BusPublish(STREAM, "intruder", 1, b"evil"), 1), zmq.NOBLOCK)
        sock.send(protocol.encode(BusFetch(STREAM, 0, 10), 2), zmq.NOBLOCK)
    except zmq.Again:
        pass  # not even connected: just as good
    try:
        assert not sock.poll(2000), "the bus answered a peer it should not admit"
    finally:
        sock.close()
    with Client(secure_bus.url, curve=Curve.load(keys)) as client:
        assert client.call(BusInfo(STREAM))[1] == 0  # nothing was appended


def test_a_peer_without_keys_cannot_subscribe(secure_bus, keys):
    with Client(secure_bus.url, curve=Curve.load(keys)) as client:
        client.call(BusInfo(STREAM))  # the stream exists: heartbeats flow to subscribers
    ctx = zmq.Context.instance()
    plain, trusted = ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)
    server_public, _ = zmq.auth.load_certificate(keys / "server.key")
    public, secret = zmq.auth.load_certificate(keys / "client.key_secret")
    trusted.curve_publickey, trusted.curve_secretkey = public, secret
    trusted.curve_serverkey = server_public
    try:
        for sock in (plain, trusted):
            sock.linger = 0
            sock.setsockopt(zmq.SUBSCRIBE, b"")
            sock.connect(secure_bus.pub_url)
        assert trusted.poll(5000), "an authorized subscriber gets the heartbeats"
        assert not plain.poll(1000), "a subscriber without keys got data"
    finally:
        plain.close()
        trusted.close()


@pytest.mark.parametrize("cluster", BACKENDS, indirect=True)
def test_a_replica_works_end_to_end_with_curve(cluster, keys):
    bus = cluster.bus()
    replica = cluster.replica(1, bus)
    assert replica.set("secret-user", spp=7).status_code == 200
    assert replica.record("secret-user")["spp"] == 7
    with pytest.raises(RemoteError):  # the storage actor admits authorized keys only
        sock = _plain_dealer(replica.storage_endpoint)
        try:
            sock.send(protocol.encode(messages.Status(), 1), zmq.NOBLOCK)
            if not sock.poll(1500):
                raise RemoteError("unknown_outcome", "no answer, as it should be")
        finally:
            sock.close()


@pytest.mark.parametrize("cluster", BACKENDS, indirect=True)
def test_the_supervisors_liveness_pings_are_answered_over_curve(cluster, keys):
    """A probe without the keys would never be answered, and the supervisor would kill
    healthy children once the start grace ran out."""
    replica = cluster.replica(1, cluster.bus())
    config = Config.from_env(replica.env, [])
    for role, endpoint in [
        ("storage", replica.storage_endpoint),
        ("broker", config.broker_liveness_endpoint),
    ]:
        _wait_answered(LivenessProbe(endpoint, str(keys)), replica.child(role).pid, role)


def _wait_answered(probe: LivenessProbe, pid: int, role: str) -> None:
    try:
        wait_until(lambda: probe.check(pid) and probe.answered, 10, f"the {role}'s answer")
    finally:
        probe.close()
