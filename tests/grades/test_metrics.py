"""GET /metrics on the getter port: HTTP counters of both ports, replica and bus state."""

from __future__ import annotations

import re

import requests

from actors.runtime.testing import wait_until


def sample(text: str, name: str, **labels) -> float | None:
    """The value of one sample in the Prometheus text format, or None."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_count_requests_and_report_replica_and_bus(cluster):
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    two = cluster.replica(2, bus, next_url=one.get_base)
    for i in range(30):
        assert one.set(f"m{i}", spp=i).status_code == 200
    assert one.get("m1").status_code == 200
    assert one.get("nobody").status_code == 404
    wait_until(lambda: two.record("m29"), 10, "replication")

    def scrape(replica):
        response = requests.get(f"{replica.get_base}/metrics", timeout=10)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        return response.text

    text = scrape(one)
    assert (
        sample(text, "grades_http_requests_total", port="setter", route="/set", status="200") == 30
    )
    assert (
        sample(text, "grades_http_requests_total", port="getter", route="/get", status="404") == 1
    )
    assert sample(text, "grades_http_request_seconds_count", port="setter", route="/set") == 30
    assert sample(text, "grades_rows") == 30
    assert sample(text, "grades_ready", phase="ready") == 1
    assert sample(text, "grades_bus_log_records", stream="grades") >= 1
    assert sample(text, "grades_bus_log_bytes", stream="grades") > 0
    assert sample(text, "grades_bus_fsync_seconds_count") >= 1
    assert sample(text, "grades_sets_applied_total") == 30
    text_two = scrape(two)
    assert sample(text_two, "grades_remote_applied_total") >= 30
    assert sample(text_two, "grades_replication_lag_ms") is not None
    assert re.search(r"^# TYPE grades_bus_fsync_seconds histogram$", text, re.M)


def test_metrics_of_a_standalone_replica_omit_the_bus(cluster):
    replica = cluster.replica(1, bus=None)
    text = requests.get(f"{replica.get_base}/metrics", timeout=10).text
    assert sample(text, "grades_storage_up") == 1
    assert "grades_bus_log_records" not in text


def test_own_writes_come_back_through_the_log_and_are_not_merged_again(cluster):
    """Storage publishes to the bus itself and the broker delivers every record, own ones
    included: those merged on the bus's ack are skipped, not counted as remote merges."""
    bus = cluster.bus()
    one = cluster.replica(1, bus)
    for i in range(20):
        assert one.set(f"own{i}", spp=i).status_code == 200

    def scrape() -> str:
        return requests.get(f"{one.get_base}/metrics", timeout=10).text

    text = wait_until(
        lambda: (t := scrape()) and (sample(t, "grades_log_position") or 0) >= 20 and t,
        10,
        "replica 1's broker to deliver its own 20 records back",
    )
    assert sample(text, "grades_sets_applied_total") == 20
    assert sample(text, "grades_remote_applied_total") == 0
    assert sample(text, "grades_rows") == 20
