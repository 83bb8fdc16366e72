"""Rejected writes change nothing anywhere: two replicas on a bus."""

from __future__ import annotations

import requests
from hypothesis import given

from actors.grades.testing import Cluster
from actors.runtime.testing import wait_until
from tests.grades.fuzz.oracle import (
    Ledger,
    acceptable,
    check_set,
    encode_pairs,
    fuzz_settings,
    object_pairs,
)

# --- rejected writes change nothing anywhere: two replicas on a bus --------------------------


def test_rejected_writes_reach_no_replica(tmp_path):
    """Mixed valid and invalid sets on replica 1: replica 2 ends with exactly replica 1's map,
    which holds exactly the accepted writes."""
    cluster = Cluster(tmp_path)
    try:
        bus = cluster.bus()
        first = cluster.replica(1, bus)
        second = cluster.replica(2, bus, next_url=first.get_base)
        ledger = Ledger(first)
        session = requests.Session()

        @fuzz_settings(60)
        @given(object_pairs())
        def run(pairs):
            check_set(first, ledger, session, encode_pairs(pairs), acceptable(pairs))

        run()
        assert first.set("the-end", spp=1).status_code == 200  # the log's last record
        ledger.touched.add("the-end")
        ledger.values["the-end"] = [0, 1, 0, 0]
        wait_until(
            lambda: second.record("the-end") is not None,
            30,
            "replica 2 to apply replica 1's last write",
        )
        ledger.verify()
        assert second.backup_rows() == first.backup_rows()
    finally:
        problems = cluster.stop_all()
    assert not problems, problems
