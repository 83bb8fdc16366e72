"""Replication lag under a fixed load: set on one replica, poll the other until it shows.

A paced wrk (lua/paced_set.lua) drives the first replica's setter at a fixed
rate; meanwhile probes, one at a time, each POST a fresh user id to the first
replica and then GET it from the second replica in a tight loop until it is
there. A probe's lag is the time from the set's 200 to the first 200 of the
GET on the other replica (an upper bound: it includes that GET's round trip;
``lag_lower_ms`` uses the send time of the successful GET instead).
"""

from __future__ import annotations

import secrets
import statistics
import time

import requests

from bench.grades import wrk
from bench.grades.stack import AUTH, BenchError

PROBE_TIMEOUT_S = 5.0
SETTLE_S = 1.0  # load runs this long before the first probe


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _probe(session_set, session_get, set_url: str, get_url: str, key: str) -> dict:
    body = {"user_id": key, "postpaid_limit": 1, "spp": 2, "shipping_fee": 3, "return_fee": 4}
    sent = time.perf_counter()
    response = session_set.post(set_url, json=body, auth=AUTH, timeout=PROBE_TIMEOUT_S)
    acked = time.perf_counter()
    if response.status_code != 200:
        return {"error": f"set answered {response.status_code}: {response.text[:100]}"}
    deadline = acked + PROBE_TIMEOUT_S
    while True:
        polled = time.perf_counter()
        reply = session_get.get(get_url, params={"user_id": key}, timeout=PROBE_TIMEOUT_S)
        seen = time.perf_counter()
        if reply.status_code == 200:
            return {
                "set_ms": (acked - sent) * 1000,
                "lag_ms": (seen - acked) * 1000,
                "lag_lower_ms": max(0.0, polled - acked) * 1000,
                "set_to_visible_ms": (seen - sent) * 1000,
            }
        if reply.status_code != 404:
            return {"error": f"get answered {reply.status_code}: {reply.text[:100]}"}
        if seen > deadline:
            return {"error": f"not visible after {PROBE_TIMEOUT_S:.0f} s"}


def measure(
    set_url: str,
    get_url: str,
    rate: float,
    duration_s: float,
    min_probes: int,
    connections: int = 64,
    threads: int = 2,
) -> dict:
    """Lag percentiles while wrk sets `rate`/s on set_url; probes until both duration_s
    has passed and min_probes are done (hard cap: 4 x duration_s + 30 s)."""
    hard_cap_s = 4 * duration_s + 30
    load = wrk.Background(
        set_url,
        wrk.PACED_SET_LUA,
        connections,
        hard_cap_s + SETTLE_S + 5,
        threads=threads,
        env={"RATE": f"{rate:.1f}", "THREADS": threads},
    )
    run_id = secrets.token_hex(4)
    probes, errors = [], []
    try:
        time.sleep(SETTLE_S)
        if not load.running():
            raise BenchError("the paced wrk exited at start")
        session_set, session_get = requests.Session(), requests.Session()
        spacing = duration_s / max(1, min_probes)
        started = time.perf_counter()
        n = 0
        while True:
            elapsed = time.perf_counter() - started
            if (elapsed >= duration_s and len(probes) >= min_probes) or elapsed > hard_cap_s:
                break
            if not load.running():
                raise BenchError("the paced wrk ended before the probes did")
            n += 1
            result = _probe(session_set, session_get, set_url, get_url, f"lag-{run_id}-{n}")
            (errors if "error" in result else probes).append(result)
            if len(errors) > 20:
                raise BenchError(f"lag probes keep failing: {errors[-1]['error']}")
            pause = started + n * spacing - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
        elapsed = time.perf_counter() - started
    except BaseException:
        load.kill()
        raise
    background = load.stop(elapsed + SETTLE_S)
    if not probes:
        raise BenchError("no lag probe succeeded")
    lags = [p["lag_ms"] for p in probes]
    lower = [p["lag_lower_ms"] for p in probes]
    return {
        "target_rate": rate,
        "load": background.as_dict(),
        "probes": len(probes),
        "probe_errors": len(errors),
        "first_probe_error": errors[0]["error"] if errors else "",
        "lag_p50_ms": _percentile(lags, 50),
        "lag_p99_ms": _percentile(lags, 99),
        "lag_max_ms": max(lags),
        "lag_mean_ms": statistics.fmean(lags),
        "lag_lower_p50_ms": _percentile(lower, 50),
        "lag_lower_p99_ms": _percentile(lower, 99),
        "probe_set_p50_ms": _percentile([p["set_ms"] for p in probes], 50),
        "set_to_visible_p99_ms": _percentile([p["set_to_visible_ms"] for p in probes], 99),
        "seconds": elapsed,
    }
