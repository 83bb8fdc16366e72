"""A two-host rehearsal of grades on JetStream, in network namespaces the test makes.

Host A (namespace 0) runs JetStream nodes 1 and 2 and replica 1; host B (namespace 1)
runs node 3 and replica 2; both hang off a bridge, on a private /24, that the test
reaches them through (actors.runtime.hosts.Namespaces). Under writes on both
replicas, host B's link goes down: A holds 2 of 3 nodes, a quorum, and must keep
acknowledging writes; B cannot. When the link is back, B catches up: nothing
acknowledged on either side is lost and the replicas are identical (values and
versions, also by ``grades verify --versions``). Skipped, with the reason, where
namespaces are not allowed (needs root).
"""

from __future__ import annotations

import time

import pytest

from actors.grades.testing import NatsCluster, NatsNode, run_cli
from actors.runtime.testing import wait_until
from tests.grades.writers import FAULT_USERS, Stalls, Writer, resume_and_check

pytestmark = pytest.mark.parametrize("cluster", ["jetstream"], indirect=True)

CUT_S = 10
"""How long host B stays cut off, beyond what the checks during the cut take."""
SERVING_AFTER_CUT = 50
"""Writes host A must acknowledge while B is cut off: it keeps serving."""
REHEARSAL_TIMEOUT_S = 180
"""Runs ~40 s here; this bounds a hang, not the run."""
NODE_STOP_TIMEOUT_S = 15.0
"""nats-server's write deadline (10 s) can hold its shutdown on a route the cut left open."""


A, B = 0, 1
"""The two hosts' indexes in the namespaces."""


@pytest.fixture
def hosts(network_hosts):
    """Namespaces A and B on a bridge (skipped, saying why, where none can be made)."""
    return network_hosts(2, "no two-host rehearsal")


@pytest.mark.timeout(REHEARSAL_TIMEOUT_S)
def test_the_side_with_the_quorum_keeps_serving_and_nothing_acknowledged_is_lost(cluster, hosts):
    home = cluster.data_dir / "nats"
    placement = [(1, A), (2, A), (3, B)]
    nodes = [
        cluster.add(
            NatsNode(
                k,
                home,
                cluster.log_dir,
                "always",
                host=hosts.address(h),
                listen_host=hosts.address(h),
                netns=hosts.names[h],
            )
        )
        for k, h in placement
    ]
    for node in nodes:
        node.write_config(nodes)
    nats = NatsCluster(nodes)
    nats.start()
    one = cluster.replica(1, nats, host=hosts.address(A), netns=hosts.names[A])
    two = cluster.replica(
        2, nats, next_url=one.get_base, host=hosts.address(B), netns=hosts.names[B]
    )
    writers = [
        Writer(one, FAULT_USERS, ("postpaid_limit", "spp")),
        Writer(two, FAULT_USERS, ("shipping_fee", "return_fee")),
    ]
    for writer in writers:
        writer.start()
    wait_until(lambda: all(w.acked_count() > 20 for w in writers), 30, "writes on both hosts")
    leader_before = nats.stream_leader().index
    stalls = Stalls(list(writers))
    stalls.start()
    before = [w.acked_count() for w in writers]
    hosts.link_down(B)
    cut_at = time.monotonic()
    try:
        wait_until(  # the cut lasts CUT_S, and A serves all along
            lambda: (
                writers[0].acked_count() > before[0] + SERVING_AFTER_CUT
                and time.monotonic() - cut_at >= CUT_S
            ),
            CUT_S * 3,
            "host A to keep acknowledging writes while host B is cut off",
            interval_s=0.2,
        )
        during = [w.acked_count() - n for w, n in zip(writers, before)]
        leader_during = nats.stream_leader().index
    finally:
        hosts.link_up(B)
    rows = resume_and_check(one, two, [*writers, stalls])
    verify = run_cli("verify", "--versions", one.get_base, two.get_base)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(
        f"\ntwo hosts (A: nodes 1, 2, replica 1; B: node 3, replica 2), B cut {CUT_S} s: "
        f"stream leader {leader_before} -> {leader_during}; acknowledged during the cut "
        f"A {during[0]}, B {during[1]}; in all A {writers[0].acked_count()} "
        f"{dict(sorted(writers[0].statuses.items()))}, B {writers[1].acked_count()} "
        f"{dict(sorted(writers[1].statuses.items()))}; 0 acknowledged lost, "
        f"{len(rows)} users identical on both"
    )
    assert leader_during in (1, 2)
    for node in nodes:  # a route cut mid-write may hold a node's exit for its write deadline
        assert node.stop(timeout_s=NODE_STOP_TIMEOUT_S) in node.ok_codes
