"""Runs last in this package (file order): the fuzzed replica's workers all survived."""

from __future__ import annotations

import requests

from tests.grades.fuzz.oracle import (
    TIMEOUT_S,
    worker_pids,
)

# --- after all of it ---------------------------------------------------------------


def test_zz_the_workers_survived_and_still_serve(replica):
    """Runs last in this module: no worker died or was replaced while being fuzzed."""
    assert worker_pids(replica) == replica.workers_at_start
    response = replica.set("still-alive", spp=11, return_fee=-1)
    assert response.status_code == 200, response.text
    assert replica.record("still-alive")["spp"] == 11
    assert requests.get(f"{replica.get_base}/backup", timeout=TIMEOUT_S).status_code == 200
    assert replica.ready()
    log = replica.output()
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log[-3000:]
