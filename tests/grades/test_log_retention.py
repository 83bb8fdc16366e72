"""Bounded logs on both backends: JetStream's stream trimmed below every live replica's
snapshot, and a dead replica that stops holding the log back once an operator retires
it (``grades retire``) or once it has been silent for BUS_RETAIN_SILENT_S.

Small limits (256 KiB; the built-in bus with 32 KiB segments) and a snapshot every
second make a few seconds of writes enough to trim the log many times over. The log's
bytes come from the log itself: BusStats, or a JetStream node's /jsz.
"""

from __future__ import annotations

import time

import pytest

from actors.bus.messages import BusStats
from actors.grades import snapshot_file
from actors.grades.testing import BACKENDS, Bus, Cluster, NatsCluster, Replica, run_cli
from actors.grades.tools import retention
from actors.grades.tools.remote import ToolError
from actors.runtime.client import Client
from actors.runtime.testing import wait_until
from tests.grades.writers import (
    FIELDS,
    Bulk,
    Writer,
    assert_holds_acked_writes,
    converged,
    start_long_load,
)

RETAIN_BYTES = 256 * 1024
SEGMENT_BYTES = 32 * 1024
LAG_S = 3.0
"""A record may go once both snapshots (every 1 s, taking a moment) cover it and the
trimmer (every 1 s) runs: about this long after it came."""
SAMPLE_EVERY_S = 0.25
LONG_WRITE_S = 40
"""The long run of issue 22: the stream's bytes sampled under load this long."""
BOUNDED_WRITE_S = 8
HELD_TIMEOUT_S = 90
"""Writing until the log is clearly over its limit (the dead replica holds it)."""
SILENT_S = 10
ENV = {
    "BUS_SEGMENT_BYTES": SEGMENT_BYTES,
    "BUS_RETAIN_BYTES": RETAIN_BYTES,
    "BUS_RETAIN_AGE_S": 0,
    "GRADES_SNAPSHOT_EVERY_S": 1,
}


def log_state(log: Bus | NatsCluster) -> tuple[int, int]:
    """(bytes, first position kept) of the grades stream, as the log itself says."""
    if isinstance(log, NatsCluster):
        state = log.stream_state()
        return state["bytes"], state["first_seq"] - 1
    with Client(log.url) as client:
        stats = client.call(BusStats(), timeout_s=5)["streams"]["grades"]
    return stats["bytes"], stats["first"]


class Sampler:
    """The largest log size seen while load runs, and the write rate it implies."""

    def __init__(self, log: Bus | NatsCluster) -> None:
        self.log = log
        self.largest = 0
        self.samples: list[tuple[float, int]] = []

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            size, _first = log_state(self.log)
            self.largest = max(self.largest, size)
            self.samples.append((time.monotonic(), size))
            time.sleep(SAMPLE_EVERY_S)


def written_rate(log: Bus | NatsCluster, seconds: float, before: int) -> float:
    """Bytes per second appended over ``seconds`` (from total records and record size)."""
    if isinstance(log, NatsCluster):
        state = log.stream_state()
        per = state["bytes"] / max(1, state["messages"])
        return (state["last_seq"] - before) * per / seconds
    with Client(log.url) as client:
        stats = client.call(BusStats(), timeout_s=5)["streams"]["grades"]
    per = stats["bytes"] / max(1, stats["records"] - stats["first"])
    return (stats["records"] - before) * per / seconds


def total_records(log: Bus | NatsCluster) -> int:
    if isinstance(log, NatsCluster):
        return int(log.stream_state()["last_seq"])
    with Client(log.url) as client:
        return int(client.call(BusStats(), timeout_s=5)["streams"]["grades"]["records"])


def bound_for(log: Bus | NatsCluster, rate: float) -> float:
    """What the log may reach: the limit, a segment or two, and LAG_S of writes."""
    slack = 2 * SEGMENT_BYTES if isinstance(log, Bus) else 0
    return RETAIN_BYTES + slack + rate * LAG_S


def start(cluster: Cluster, **env: object) -> tuple[Bus | NatsCluster, Replica, Replica]:
    log = cluster.bus(**{**ENV, **env})
    one = cluster.replica(1, log, **{**ENV, **env})
    two = cluster.replica(2, log, next_url=one.get_base, **{**ENV, **env})
    return log, one, two


@pytest.mark.timeout(240)
@pytest.mark.parametrize("cluster", ["jetstream"], indirect=True)
def test_a_long_write_run_keeps_the_stream_bounded_and_a_trimmed_replica_restores(cluster):
    nats, one, two = start(cluster)
    writers, bulk = start_long_load(one, two)
    sampler = Sampler(nats)
    sampler.run_for(LONG_WRITE_S)
    for writer in [*writers, bulk]:
        writer.stop()
    rate = written_rate(nats, LONG_WRITE_S, 0)
    size, first = log_state(nats)
    bound = bound_for(nats, rate)
    print(
        f"\nJetStream, BUS_RETAIN_BYTES={RETAIN_BYTES}: {LONG_WRITE_S} s of writes, "
        f"{rate * LONG_WRITE_S:,.0f} bytes written, stream at most {sampler.largest:,} bytes "
        f"(bound {bound:,.0f}), now {size:,} from position {first:,}; "
        f"samples every 5 s: {[s for _, s in sampler.samples[:: int(5 / SAMPLE_EVERY_S)]]}"
    )
    assert first > 0
    assert rate * LONG_WRITE_S > 4 * bound, f"too few writes to show trimming ({rate:.0f} B/s)"
    assert sampler.largest <= bound, f"stream reached {sampler.largest}, bound {bound:.0f}"
    assert_holds_acked_writes(converged(one, two), *writers)

    # Replica 2 goes for good: retired, the stream is purged past its snapshot...
    assert cluster.stop(two) is None
    _, meta = snapshot_file.newest(cluster.data_dir / "replica2")
    retired = run_cli("retire", "2", "--bus", nats.url)
    assert retired.returncode == 0, retired.stderr
    assert "retired replica2" in retired.stdout
    writer, bulk = Writer(one, [f"big{i}" for i in range(2000)], FIELDS), Bulk(one)
    writer.start()
    bulk.start()
    wait_until(
        lambda: log_state(nats)[1] > meta["position"],
        60,
        "retention to purge what replica 2's snapshot needs",
    )
    writer.stop()
    bulk.stop()
    # ...and comes back while its peer is down: its own snapshot is refused, loudly.
    assert one.stop() == 0
    back = cluster.replica(2, nats, next_url=one.get_base, wait=False, **ENV)
    wait_until(
        lambda: "falling back to the peer's backup" in back.output(),
        30,
        "its own snapshot to be refused",
    )
    assert "REFUSED" in back.output() and "older than what it keeps" in back.output()
    one.start()
    one.wait_ready()
    back.wait_ready()
    assert_holds_acked_writes(converged(one, back), writer)
    verify = run_cli("verify", "--versions", one.get_base, back.get_base)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.timeout(240)
@pytest.mark.parametrize("how", ["retired", "silent"])
@pytest.mark.parametrize("cluster", BACKENDS, indirect=True)
def test_a_dead_replica_stops_holding_the_log_once_retired_or_silent(cluster, how):
    silent_s = SILENT_S if how == "silent" else 3600
    log, one, two = start(cluster, BUS_RETAIN_SILENT_S=silent_s)
    assert one.set("early", spp=1).status_code == 200

    def replica2_reported() -> bool:
        try:
            return "replica2" in retention.log_state(log.url, "grades", silent_s)["consumers"]
        except ToolError:  # a stream still electing its leader does not answer in time
            return False

    wait_until(replica2_reported, 30, "replica 2's snapshot position to reach the log")
    two.kill9()
    records_before, started = total_records(log), time.monotonic()
    bulk = Bulk(one)
    bulk.start()
    try:
        if how == "retired":  # while it is merely dead, it holds the log: over the limit
            wait_until(
                lambda: log_state(log)[0] > 2 * RETAIN_BYTES, HELD_TIMEOUT_S, "the log to grow"
            )
            retired = run_cli("retire", "2", "--bus", log.url)
            assert retired.returncode == 0, retired.stderr
            again = run_cli("retire", "2", "--bus", log.url)
            assert again.returncode == 1 and "no consumer replica2" in again.stderr
        else:  # no operator: it times out, and the log (bus or broker) says so
            warned = log if isinstance(log, Bus) else one
            wait_until(
                lambda: "consumer replica2 silent for over" in warned.output(),
                silent_s + 20,
                "the silence warning",
            )
            status = run_cli(
                "status", one.get_base, "--bus", log.url, BUS_RETAIN_SILENT_S=str(silent_s)
            )
            assert "warning: replica2 silent for" in status.stdout, status.stdout
            assert "no longer holds the log back" in status.stdout
            print(f"\n$ grades status {one.get_base} --bus ...\n{status.stdout}")
        rate = written_rate(log, time.monotonic() - started, records_before)
        bound = bound_for(log, rate)
        wait_until(lambda: log_state(log)[0] <= bound, 30, "the log to be trimmed to its bound")
        sampler = Sampler(log)
        sampler.run_for(BOUNDED_WRITE_S)
    finally:
        bulk.stop()
    print(
        f"\n{cluster.backend}, replica 2 dead and {how}: log at most {sampler.largest:,} bytes "
        f"over {BOUNDED_WRITE_S} s of writes at {rate:,.0f} B/s (bound {bound:,.0f})"
    )
    assert sampler.largest <= bound
    assert one.ready()
