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


def test_victims_are_named_by_their_process_titles():
    """Titles as a running tree shows them (ps): kinds without numbers, the replica kept."""
    from bench.chaos.killer import classify

    seen = {
        "grades: replica=1 supervisor": ("grades", "grades: supervisor", "replica1"),
        "grades: storage replica=2": ("grades", "grades: storage", "replica2"),
        "grades: bus": ("grades", "grades: bus", "bus"),
        "gunicorn: worker [grades: http replica=1]": (
            "grades",
            "grades: http worker",
            "replica1",
        ),
        "gunicorn: master [balances: http 127.0.0.1:3333]": (
            "balances",
            "balances: http master",
            "balances",
        ),
        "balances: worker 0": ("balances", "balances: worker", "balances"),
        "accrual: supervisor 127.0.0.1:8091": ("accrual", "accrual: supervisor", "accrual"),
        "/usr/lib/postgresql/15/bin/postgres -D /tmp/x/postgres -p 5433": (
            "postgres",
            "postgres: postmaster",
            "postgres",
        ),
        "postgres: postgres postgres 127.0.0.1(47198) idle": (
            "postgres",
            "postgres: backend",
            "postgres",
        ),
        "/usr/sbin/nats-server -c /tmp/x/node1.conf": ("grades", "grades: nats node", "bus"),
    }
    for title, (service, kind, instance) in seen.items():
        victim = classify(title)
        assert victim is not None, title
        assert (victim.service, victim.kind, victim.instance) == (service, kind, instance), title
    for title in ("postgres: checkpointer", "python -m actors.runtime.pg.foreground --port 5433"):
        assert classify(title) is None, title


def test_an_outage_is_the_gap_after_the_old_workers_last_answers():
    """A killed supervisor's old workers answer a moment longer; the gap after counts."""
    from bench.chaos.answers import NO_ANSWER, Answer
    from bench.chaos.killer import Kill, Victim
    from bench.chaos.report import outages

    kill = Kill(100.0, Victim(1, "segments", "segments: supervisor", "segments"))

    def answer(sent: float, done: float, status: int = 200) -> Answer:
        return Answer("segments", "segments", "change", sent, done, status)

    steady = [answer(90 + i / 10, 90 + i / 10 + 0.01) for i in range(100)]  # before the kill
    old_workers = [answer(100.01, 100.02), answer(100.02, 100.03)]
    refused = [answer(100.1 + i / 10, 100.1 + i / 10, NO_ANSWER) for i in range(8)]
    back = [answer(100.9, 100.95), *(answer(101 + i / 10, 101.01 + i / 10) for i in range(50))]
    (outage,) = outages([kill], steady + old_workers + refused + back, [])
    assert outage.seconds is not None and abs(outage.seconds - (100.95 - 100.03)) < 1e-9

    (never,) = outages([kill], steady + refused, [])
    assert never.seconds is None
