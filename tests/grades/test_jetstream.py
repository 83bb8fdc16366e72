"""grades on a 3-node NATS JetStream cluster: node faults under writes on both replicas.

Each fault runs while both replicas take writes of different fields of the same
users. Afterwards the replicas must be identical (values and versions), hold
every acknowledged write (0 lost), and a write answered 504 (outcome unknown)
may have landed or not, but on both replicas or neither (identical maps).
The stream's positions are checked by the broker itself: a recreated stream is
replayed from its start, a purged one is refused loudly.
"""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from actors.runtime.testing import wait_until
from tests.grades.writers import (
    FAULT_USERS,
    RESUME_TIMEOUT_S,
    Stalls,
    Writer,
    resume_and_check,
    wait_for_acks,
    wait_for_refusals,
)

pytestmark = pytest.mark.parametrize("cluster", ["jetstream"], indirect=True)

FAULT_TEST_TIMEOUT_S = 150
"""Per test (pytest-timeout): each runs ~15-25 s here; this bounds a hang, not the run."""


def _start(cluster):
    nats = cluster.bus()
    one = cluster.replica(1, nats)
    two = cluster.replica(2, nats, next_url=one.get_base)
    writers = [
        Writer(one, FAULT_USERS, ("postpaid_limit", "spp")),
        Writer(two, FAULT_USERS, ("shipping_fee", "return_fee")),
    ]
    for writer in writers:
        writer.start()
    wait_until(
        lambda: all(w.acked_count() > 20 for w in writers),
        RESUME_TIMEOUT_S,
        "both replicas to acknowledge writes",
    )
    writers.append(Stalls(list(writers)))
    writers[-1].start()
    return nats, one, two, writers


def _load(writers: list[Writer | Stalls]) -> list[Writer]:
    """The writers of a `_start` load, without its stall sampler."""
    return [w for w in writers if isinstance(w, Writer)]


def _js(url: str, job):
    """Run ``await job(js)`` against the cluster with a fresh nats-py connection."""
    import nats

    async def run():
        nc = await nats.connect(url.split(","), connect_timeout=2)
        try:
            return await job(nc.jetstream(timeout=5))
        finally:
            await nc.close()

    return asyncio.run(asyncio.wait_for(run(), 30))


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_kill9_of_a_follower_under_writes(cluster):
    nats, one, two, writers = _start(cluster)
    leader = nats.stream_leader()
    follower = next(node for node in nats.nodes if node is not leader)
    follower.kill9()
    wait_for_acks(_load(writers), 50, "writes to go on with the follower down")
    nats.start(follower)
    resume_and_check(one, two, writers)


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_kill9_of_the_stream_leader_under_writes(cluster):
    nats, one, two, writers = _start(cluster)
    leader = nats.stream_leader()
    leader.kill9()
    wait_for_acks(_load(writers), 50, "writes to go on once a new leader is elected")
    nats.start(leader)
    resume_and_check(one, two, writers)


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_kill9_of_two_nodes_under_writes(cluster):
    nats, one, two, writers = _start(cluster)
    leader = nats.stream_leader()
    follower = next(node for node in nats.nodes if node is not leader)
    leader.kill9()
    follower.kill9()
    wait_for_refusals(_load(writers), "no quorum: writes to be refused or unknown")
    nats.start(leader, follower)
    resume_and_check(one, two, writers)
    assert any(503 in w.statuses or 504 in w.statuses for w in writers)


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_kill9_of_all_three_nodes_under_writes(cluster):
    nats, one, two, writers = _start(cluster)
    nats.kill9()
    wait_for_refusals(_load(writers), "writes to be refused or unknown with no node up")
    nats.start()
    resume_and_check(one, two, writers)
    assert any(503 in w.statuses or 504 in w.statuses for w in writers)


@pytest.mark.timeout(FAULT_TEST_TIMEOUT_S)
def test_sigstop_of_the_stream_leader_under_writes(cluster):
    nats, one, two, writers = _start(cluster)
    leader = nats.stream_leader()
    os.kill(leader.process.pid, signal.SIGSTOP)
    try:
        # NOTE: held until the writers felt it (a publish timed out, or the others
        # elected a new leader and writes went on), not for a fixed time
        load = _load(writers)
        before = [w.acked_count() for w in load]
        wait_until(
            lambda: (
                any(503 in w.statuses or 504 in w.statuses for w in load)
                or all(w.acked_count() > b + 50 for w, b in zip(load, before))
            ),
            RESUME_TIMEOUT_S,
            "the writers to be refused, or to go on past the stopped leader",
        )
    finally:
        os.kill(leader.process.pid, signal.SIGCONT)
    resume_and_check(one, two, writers)


def test_a_recreated_stream_is_replayed_from_its_start(cluster):
    nats = cluster.bus()
    one = cluster.replica(1, nats)
    two = cluster.replica(2, nats, next_url=one.get_base)
    for i in range(30):
        assert one.set(f"old{i}", spp=i).status_code == 200
    wait_until(lambda: two.record("old29"), 10, "the old stream's records on replica 2")
    _js(nats.url, lambda js: js.delete_stream("GRADES"))
    # The brokers' probes recreate it; replica 2's position (30) means nothing there.
    wait_until(
        lambda: one.set("new0", spp=1).status_code == 200, 20, "writes into the recreated stream"
    )
    for i in range(1, 10):
        assert one.set(f"new{i}", spp=i).status_code == 200
    wait_until(
        lambda: all(two.record(f"new{i}") for i in range(10)),
        20,
        "replica 2 to replay the recreated stream from its start",
    )
    assert "replaying it from the start" in two.output()


def test_a_purged_stream_is_refused_loudly_then_a_peer_backup_is_used(cluster):
    nats = cluster.bus()
    one = cluster.replica(1, nats)
    for i in range(20):
        assert one.set(f"p{i}", return_fee=i).status_code == 200
    _js(nats.url, lambda js: js.purge_stream("GRADES"))
    # A cold start with no peer would need sequence 1, which the stream no longer has.
    lone = cluster.replica(3, nats, wait=False)
    wait_until(lambda: "REFUSED" in lone.output(), 20, "the refusal to be logged")
    assert not lone.ready()
    assert "older than what it keeps" in lone.output()
    cluster.stop(lone)
    # With a peer it restores the peer's backup (position 20) and replays from there.
    three = cluster.replica(3, nats, next_url=one.get_base)
    assert three.record("p19")["return_fee"] == 19
    assert one.set("after", spp=7).status_code == 200
    wait_until(lambda: three.record("after"), 10, "live records after the restore")
