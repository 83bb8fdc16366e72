"""The replicated cluster end to end: replication, convergence, restore, kill -9.

Writers record every write the cluster acknowledged (200). After each fault
the replicas must end identical (values and versions) and hold every
acknowledged write; a write whose outcome was unknown (504) may or may not
have landed, so each writer writes increasing values and a field may only
end at its last acknowledged value or a later attempted one.
"""

from __future__ import annotations

import time

import pytest

from actors.grades.testing import BACKENDS
from actors.runtime.testing import HarnessError, wait_until
from tests.grades.writers import (
    FIELDS,
    Writer,
    assert_holds_acked_writes,
    converged,
    wait_for_acks,
    wait_for_refusals,
)

both_backends = pytest.mark.parametrize("cluster", BACKENDS, indirect=True)
"""The built-in bus and a 3-node JetStream cluster (a fixture parameter, see conftest)."""


@both_backends
def test_a_set_on_either_replica_appears_on_the_other(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    assert one.set("3333", postpaid_limit=3333, spp=23123).status_code == 200
    wait_until(lambda: two.record("3333"), 10, "the set to reach replica 2")
    assert two.record("3333")["spp"] == 23123
    assert two.set("3333", shipping_fee=333).status_code == 200
    wait_until(
        lambda: (one.record("3333") or {}).get("shipping_fee") == 333,
        10,
        "the set to reach replica 1",
    )
    assert one.record("3333") == two.record("3333")


@both_backends
def test_concurrent_partial_sets_on_both_replicas_keep_every_field(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    users = [f"u{i}" for i in range(40)]
    writers = [
        Writer(one, users, ("postpaid_limit", "spp")),
        Writer(two, users, ("shipping_fee", "return_fee")),
    ]
    for writer in writers:
        writer.start()
    wait_for_acks(writers, 300, "both replicas to acknowledge partial sets")
    for writer in writers:
        writer.stop()
    rows = converged(one, two)
    for writer in writers:
        for (user, field), value in writer.acked.items():
            assert rows[user][FIELDS.index(field)] == value  # nothing was lost or unknown
        assert set(writer.statuses) == {200}, writer.statuses


def test_concurrent_writes_of_the_same_field_converge(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    users = [f"same{i}" for i in range(20)]
    writers = [Writer(one, users, ("spp",)), Writer(two, users, ("spp",))]
    for writer in writers:
        writer.start()
    wait_for_acks(writers, 200, "both replicas to acknowledge sets of the same field")
    for writer in writers:
        writer.stop()
    rows = converged(one, two)
    assert len(rows) == len(users)


def test_kill9_of_replica2_under_writes_then_restart(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    writer = Writer(one, [f"k{i}" for i in range(500)], FIELDS)
    writer.start()
    wait_for_acks([writer], 100, "writes before the kill")
    two.kill9()
    wait_for_acks([writer], 100, "replica 1 to go on acknowledging while replica 2 is down")
    two.start()
    two.wait_ready()
    wait_for_acks([writer], 100, "writes after replica 2 is back")
    writer.stop()
    rows = converged(one, two)
    assert_holds_acked_writes(rows, writer)
    assert "restore:" in two.output()


def test_kill9_of_the_bus_under_load_loses_no_acknowledged_write(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    writers = [
        Writer(one, [f"a{i}" for i in range(300)], ("spp", "postpaid_limit")),
        Writer(two, [f"a{i}" for i in range(300)], ("shipping_fee",)),
        Writer(two, [f"b{i}" for i in range(300)], FIELDS),
    ]
    for writer in writers:
        writer.start()
    wait_for_acks(writers, 100, "writes before the kill")
    bus.kill9()
    # NOTE: down until the writers see the outage (504, or 503 once the bus is declared
    # lost), so the test checks what a write answered during an outage does
    wait_for_refusals(writers, "the writers to see the bus outage")
    bus.start()
    bus.wait_listening()
    wait_until(lambda: all(w.statuses.get(200, 0) > 0 for w in writers), 20, "writes to resume")
    before = [w.acked_count() for w in writers]
    wait_until(
        lambda: all(w.acked_count() > b + 50 for w, b in zip(writers, before)),
        30,
        "the replicas to accept writes again without a restart",
    )
    for writer in writers:
        writer.stop()
    rows = converged(one, two)
    assert_holds_acked_writes(rows, *writers)
    assert any(503 in w.statuses or 504 in w.statuses for w in writers)


@both_backends
def test_kill9_of_replica1_right_after_acknowledged_writes(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    acked = {}
    for i in range(300):
        response = one.set(f"last{i}", spp=i, return_fee=-i)
        assert response.status_code == 200
        acked[f"last{i}"] = i
    one.kill9()

    def all_there():
        rows = two.backup_rows()
        return all(k in rows and rows[k][1] == v for k, v in acked.items())

    wait_until(all_there, 20, "replica 2 to hold every write replica 1 acknowledged")
    one.start()
    one.wait_ready()
    rows = converged(one, two)
    assert all(rows[k][1] == v and rows[k][3] == -v for k, v in acked.items())


@both_backends
def test_bus_down_means_fast_503_working_gets_and_resume(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    assert one.set("steady", spp=1).status_code == 200
    bus.kill9()

    def set_refused():
        started = time.monotonic()
        response = one.set("steady", spp=2)
        return [response, time.monotonic() - started] if response.status_code == 503 else None

    response, elapsed = wait_until(set_refused, 15, "sets to be refused with 503")
    assert response.headers["Retry-After"]
    assert elapsed < 1.0, f"a refused set took {elapsed:.2f} s"
    assert one.record("steady")["spp"] == 1
    bus.start()
    bus.wait_listening()
    wait_until(
        lambda: one.set("steady", spp=3).status_code == 200,
        20,
        "sets to work again once the bus is back",
    )
    assert one.record("steady")["spp"] == 3


@both_backends
def test_cold_start_rebuilds_from_the_log(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    for i in range(50):
        assert one.set(f"cold{i}", spp=i).status_code == 200
    assert one.stop() == 0
    one.start()
    one.wait_ready()
    assert all(one.record(f"cold{i}")["spp"] == i for i in range(50))
    assert "rebuilding from the bus log" in one.output()


def test_a_late_replica_restores_from_a_peer_while_writes_continue(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    from actors.grades.messages import Set
    from actors.runtime.client import Client

    with Client(one.storage_endpoint) as client:
        for start in range(0, 30_000, 1000):
            ids = [
                client.send(Set(f"bulk{i}", [i, None, None, i], 0))
                for i in range(start, start + 1000)
            ]
            for _ in ids:
                client.receive()
    writer = Writer(one, [f"live{i}" for i in range(200)], FIELDS)
    writer.start()
    wait_for_acks([writer], 100, "writes before replica 2 starts")
    two = cluster.replica(2, bus, next_url=one.get_base)
    wait_for_acks([writer], 100, "writes after replica 2 restored")
    writer.stop()
    rows = converged(one, two)
    assert len(rows) == 30_000 + 200
    assert_holds_acked_writes(rows, writer)
    assert "backup of" in two.output()


@both_backends
def test_broker_killed_is_restarted_and_catches_up(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    writer = Writer(one, [f"br{i}" for i in range(200)], ("spp",))
    writer.start()
    wait_for_acks([writer], 100, "writes before the kill")
    broker = two.child("broker")
    broker.kill()
    broker.wait(timeout=5)

    def restarted() -> bool:
        try:
            return two.child("broker").pid != broker.pid
        except HarnessError:  # between the death and the restart
            return False

    wait_until(restarted, 10, "a new broker on replica 2")
    wait_for_acks([writer], 100, "writes after the broker's restart")
    writer.stop()
    rows = converged(one, two)
    assert_holds_acked_writes(rows, writer)
    assert two.child("broker").pid != broker.pid


@both_backends
def test_storage_killed_in_a_replicated_replica_restores_itself(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    for i in range(100):
        assert two.set(f"st{i}", return_fee=i).status_code == 200
    storage = two.child("storage")
    storage.kill()
    storage.wait(timeout=5)
    wait_until(lambda: two.ready(), 30, "replica 2 to be ready again")
    rows = converged(one, two)
    assert all(rows[f"st{i}"][3] == i for i in range(100))


def test_replicas_with_skewed_clocks_keep_causality_and_converge(cluster):
    bus = cluster.bus()
    behind = cluster.replica(1, bus, GRADES_CLOCK_SKEW_MS=-5000)
    ahead = cluster.replica(2, bus, next_url=behind.get_base, GRADES_CLOCK_SKEW_MS=5000)
    for i in range(20):
        assert ahead.set(f"skew{i}", spp=1).status_code == 200
    wait_until(
        lambda: all((behind.record(f"skew{i}") or {}).get("spp") == 1 for i in range(20)),
        10,
        "the ahead replica's writes to arrive",
    )
    for i in range(20):  # causally after: must win although this clock is 10 s behind
        assert behind.set(f"skew{i}", spp=2).status_code == 200
    writers = [
        Writer(behind, [f"skew{i}" for i in range(20)], ("return_fee",)),
        Writer(ahead, [f"skew{i}" for i in range(20)], ("return_fee",)),
    ]
    for writer in writers:
        writer.start()
    wait_for_acks(writers, 100, "both replicas to acknowledge concurrent sets")
    for writer in writers:
        writer.stop()
    rows = converged(behind, ahead)
    assert all(rows[f"skew{i}"][1] == 2 for i in range(20))
