"""`make chaos` as a real process: a short run of everything under kill -9 ends with
every invariant held (exit 0) and a report naming each service and invariant."""

from __future__ import annotations

import subprocess
import sys

from actors.runtime.testing import ROOT

RUN_MINUTES = 0.75
RUN_TIMEOUT_S = 600
"""Start, 45 s of kills, the checks' waits for the last orders and tasks: well inside this."""
KEY_LINES = (
    "grades: acknowledged writes on both replicas",
    "grades: replicas identical: yes",
    "gophermart: PROCESSED orders credited exactly once",
    "gophermart: balance = credits - withdrawals >= 0 for every user",
    "gophermart: 200 withdrawals listed exactly once",
    "balances: 202 tasks final exactly once, in acceptance order",
    "balances: outcomes and balances = in-order replay, none negative",
    "balances: Idempotency-Key replays gave the first answer",
    "segments: 2xx answers in the history",
    "segments: membership = history replay",
    "segments: nothing expired served",
    "invariants: all held",
)


def test_a_short_chaos_run_keeps_every_invariant():
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.chaos.run",
            "--minutes",
            str(RUN_MINUTES),
            "--kill-every",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    for line in KEY_LINES:
        assert line in report, f"the report lacks {line!r}:\n{report}"
    assert "BROKEN" not in report, report
    kills = [line for line in report.splitlines() if " killed " in line]
    assert len(kills) >= 5, f"too few kills in {RUN_MINUTES} min:\n{report}"
    for service in ("grades", "gophermart", "accrual", "segments", "balances", "postgres"):
        assert any(line.startswith(f"{service} ") for line in report.splitlines()), report
