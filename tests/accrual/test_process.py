"""The `accrual` command as a real process: the per-minute limit shared by its workers,
and one-line configuration errors. (Its course flow runs in tests/gophermart.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from actors.accrual.testing import Accrual
from actors.runtime.testing import ROOT


@pytest.fixture(scope="module")
def limited(procs, pg_dsn):
    service = procs.add(Accrual(pg_dsn, procs.dir, workers=2, ACCRUAL_RATE_LIMIT=10))
    service.start()
    service.wait_ready()
    return service


def test_says_it_is_ready_once_http_answers(limited):
    assert len(limited.wait_ready_line("accrual")) == 1


def test_limit_is_the_services_not_each_workers(limited):
    statuses = []
    for _ in range(25):  # fresh connections: spread over both workers
        statuses.append(
            limited.get("/api/orders/12345678903", headers={"Connection": "close"}).status_code
        )
    # A minute boundary may fall inside the burst: then up to 10 more pass.
    assert 10 <= statuses.count(204) <= 20 and statuses.count(429) >= 5, statuses
    refused = limited.get("/api/orders/12345678903")
    assert refused.status_code in (204, 429)
    if refused.status_code == 429:
        assert refused.text == "No more than 10 requests per minute allowed"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    "env, code, name",
    [
        (
            {"RUN_ADDRESS": "nonsense", "DATABASE_URI": "postgresql://x@127.0.0.1:1/x"},
            2,
            "RUN_ADDRESS",
        ),
        (
            {"DATABASE_URI": "postgresql://x@127.0.0.1:1/x", "ACCRUAL_RATE_LIMIT": "-1"},
            2,
            "ACCRUAL_RATE_LIMIT",
        ),
        ({}, 2, "DATABASE_URI"),
        (
            {"DATABASE_URI": "postgresql://x@127.0.0.1:1/x", "ACCRUAL_DB_WAIT_S": "1"},
            1,
            "DATABASE_URI",
        ),
    ],
)
def test_configuration_errors_are_one_line(env, code, name):
    result = subprocess.run(
        [sys.executable, "-m", "actors.accrual.cli"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and name in lines[0], result.stderr
