"""A network partition of the JetStream stream leader, under writes on both replicas.

Node 3 runs in its own network namespace, joined to the host by a veth pair;
taking the host's end of the link down cuts node 3 off from the other nodes and
from the replicas at once (a partition, not a crash: the process keeps running
and believes it leads until it notices). The majority elects a leader, writes go
on there, and after the link is back node 3 rejoins as a follower; 0 acknowledged
writes lost, replicas identical. Needs root and iproute2 (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from typing import NamedTuple

import pytest

from actors.grades.testing import NatsCluster, NatsNode
from actors.runtime.testing import wait_until
from tests.grades.netns import ip, ip_quiet, require_netns
from tests.grades.writers import FAULT_USERS, Stalls, Writer, resume_and_check

pytestmark = pytest.mark.parametrize("cluster", ["jetstream"], indirect=True)

CUT_S = 8
STEPDOWN_ATTEMPTS = 12
PARTITION_TEST_TIMEOUT_S = 150
"""Runs ~20-25 s here; this bounds a hang, not the run."""
NODE_STOP_TIMEOUT_S = 15.0
"""nats-server's write deadline (10 s) can hold its shutdown on a route the cut left open."""


class Namespace(NamedTuple):
    name: str
    outside: str  # the host's end of the veth pair
    outside_ip: str
    inside_ip: str


@pytest.fixture
def netns():
    require_netns("a partition that cuts a node off")
    name = f"grt{secrets.token_hex(3)}"  # veth names stay under 15 characters
    octet = 16 + secrets.randbelow(200)
    ns = Namespace(name, f"{name}a", f"10.213.{octet}.1", f"10.213.{octet}.2")
    try:
        ip("netns", "add", name)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot make a network namespace here: {exc.stderr.strip()}")
    try:
        ip("link", "add", ns.outside, "type", "veth", "peer", "name", f"{name}b")
        ip("link", "set", f"{name}b", "netns", name)
        ip("addr", "add", f"{ns.outside_ip}/30", "dev", ns.outside)
        ip("link", "set", ns.outside, "up")
        ip("netns", "exec", name, "ip", "addr", "add", f"{ns.inside_ip}/30", "dev", f"{name}b")
        ip("netns", "exec", name, "ip", "link", "set", f"{name}b", "up")
        ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield ns
    finally:
        ip_quiet("link", "del", ns.outside)
        ip_quiet("netns", "del", name)


def _stepdown(url: str) -> None:
    import nats

    async def run():
        nc = await nats.connect(url.split(","), connect_timeout=2)
        try:
            await nc.request("$JS.API.STREAM.LEADER.STEPDOWN.GRADES", b"", timeout=5)
        finally:
            await nc.close()

    asyncio.run(asyncio.wait_for(run(), 20))


def _lead_from(nats: NatsCluster, node: NatsNode) -> None:
    """Step the stream leader down until ``node`` leads (the partition should hit it)."""
    for _ in range(STEPDOWN_ATTEMPTS):
        leader = nats.stream_leader()
        if leader is node:
            return
        _stepdown(nats.url)
        wait_until(lambda old=leader: nats.stream_leader() is not old, 20, "a new leader")
    pytest.fail(f"node {node.index} never became the stream leader")


@pytest.mark.timeout(PARTITION_TEST_TIMEOUT_S)
def test_a_partitioned_stream_leader_is_replaced_and_rejoins(cluster, netns):
    home = cluster.data_dir / "nats"
    nodes = [
        cluster.add(
            NatsNode(
                k, home, cluster.log_dir, "always", host=netns.outside_ip, listen_host="0.0.0.0"
            )
        )
        for k in (1, 2)
    ]
    nodes.append(
        cluster.add(
            NatsNode(
                3,
                home,
                cluster.log_dir,
                "always",
                host=netns.inside_ip,
                listen_host="0.0.0.0",
                netns=netns.name,
            )
        )
    )
    for node in nodes:
        node.write_config(nodes)
    nats = NatsCluster(nodes)
    nats.start()
    one = cluster.replica(1, nats)
    two = cluster.replica(2, nats, next_url=one.get_base)
    writers = [
        Writer(one, FAULT_USERS, ("postpaid_limit", "spp")),
        Writer(two, FAULT_USERS, ("shipping_fee", "return_fee")),
    ]
    for writer in writers:
        writer.start()
    _lead_from(nats, nodes[2])
    stalls = Stalls(list(writers))
    stalls.start()
    before = [w.acked_count() for w in writers]
    ip("link", "set", netns.outside, "down")
    try:
        wait_until(
            lambda: all(w.acked_count() > b + 20 for w, b in zip(writers, before)),
            CUT_S * 3,
            "writes to go on with the majority while node 3 is cut off",
        )
        assert nats.stream_leader() is not nodes[2]
        time.sleep(CUT_S)
    finally:
        ip("link", "set", netns.outside, "up")
    resume_and_check(one, two, [*writers, stalls])
    for node in nodes:  # a route cut mid-write may hold a node's exit for its write deadline
        assert node.stop(timeout_s=NODE_STOP_TIMEOUT_S) in node.ok_codes
