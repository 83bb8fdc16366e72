"""balances' benchmarks (issue 12, item 6), ours beside pgbench in one run.

    .venv/bin/python -m bench.run balances            # ~3 minutes
    .venv/bin/python -m bench.run balances --quick    # smoke: ~1 minute

One private PostgreSQL (fsync on) holds balances' and pgbench's tables (pgbench at
scale = clients, as its documentation asks for the TPC-B-like script). USERS users.

    1  tasks applied/s end to end: wrk POSTs mixed tasks (half write-offs, 1..1000, to
       random users) for DURATION s; the figure is the tasks accepted divided by the time
       from the load's start until the last of them is done or cancelled
                                                        vs pgbench -b tpcb-like, same clients
       1.p50/p99: latency of the 202 (the task committed) under that load
    2  queue drain: QUEUED tasks committed at once (straight into the table, in
       acceptance order, as a backlog left by a restart); seconds until none is queued

Every task of the run is checked final at the end (done or cancelled, none lost) and
each user's balance equal to the in-order replay of its tasks. Writes
bench/results/balances-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import asyncpg

from actors.balances.testing import Balances, replay
from actors.runtime.testing import wait_until
from bench import report
from bench.common import args as bench_args
from bench.common import wrk
from bench.common.cpu import CpuMeter, service_groups
from bench.common.pg import Postgres
from bench.common.results import Results
from bench.common.session import run_service_bench
from bench.common.side import Figure, add_comparison, alternate, pgbench_side

LUA = Path(__file__).resolve().parent / "lua"
USERS = 10_000
OPENING = 5_000
HTTP_WORKERS = 2  # balances' defaults: 2 HTTP workers, one worker actor per core
TARGETS = {"applied": 1.0}  # issue 20: group commit should beat five statements a transaction
DRAIN_TIMEOUT_S = 300.0
ANY_QUEUED = "SELECT EXISTS (SELECT 1 FROM balances.tasks WHERE status = 'queued')"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_args.parser(
        "balances", __doc__, "smoke run: 3 s per run, 1 round, 10k queued tasks"
    )
    parser.add_argument(
        "--queued", type=int, help="tasks of the drain measurement (default 100000; quick 10000)"
    )
    args = bench_args.settle(parser.parse_args(argv))
    args.queued = args.queued or (10_000 if args.quick else 100_000)
    return args


async def _one(dsn: str, sql: str, *params):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *params, timeout=DRAIN_TIMEOUT_S)
    finally:
        await conn.close()


def _seed(dsn: str) -> tuple[int, int]:
    """USERS users with OPENING each, straight into the table; (lowest id, highest id)."""
    low = asyncio.run(
        _one(
            dsn,
            "WITH ins AS (INSERT INTO balances.users (username, balance)"
            " SELECT 'bench-' || g, $2 FROM generate_series(1, $1) g RETURNING id)"
            " SELECT min(id) FROM ins",
            USERS,
            OPENING,
        )
    )
    return low, low + USERS - 1


def _queued(dsn: str) -> int:
    return asyncio.run(_one(dsn, "SELECT count(*) FROM balances.tasks WHERE status = 'queued'"))


def _wait_drained(dsn: str, what: str) -> float:
    wait_until(
        lambda: not asyncio.run(_one(dsn, ANY_QUEUED)), DRAIN_TIMEOUT_S, what, interval_s=0.05
    )
    return time.monotonic()


def _end_to_end(service: Balances, dsn: str, env: dict, args, log, cpu: dict) -> Figure:
    """wrk for DURATION s, then until every task it got accepted is final."""
    before = asyncio.run(_one(dsn, "SELECT count(*) FROM balances.tasks"))
    started = time.monotonic()
    with CpuMeter(cpu, label="tasks") as meter:
        result = wrk.run(
            service.url("/api/v1/user/1/amount/"),
            LUA / "tasks.lua",
            args.clients,
            args.duration,
            env=env,
        )
        load_s = time.monotonic() - started
        left = _queued(dsn)
        ended = _wait_drained(dsn, "the run's tasks to be applied")
    accepted = asyncio.run(_one(dsn, "SELECT count(*) FROM balances.tasks")) - before
    seconds = ended - started
    log(
        f"    {accepted} tasks accepted in {load_s:.1f} s, {left} still queued when the "
        f"load stopped, all final after {seconds:.2f} s"
    )
    return Figure(
        accepted / seconds,
        result.p50_ms,
        result.p99_ms,
        result.non2xx + result.sockerr,
        [
            {
                **result.as_dict(),
                "accepted": accepted,
                "final_after_s": seconds,
                "queued_at_load_end": left,
                "accepted_per_s": result.rps,
            }
        ],
        meter.per_op_us(accepted),
    )


def _drain(dsn: str, low: int, high: int, count: int, log) -> dict:
    """`count` tasks committed at once by SQL (no nudge: the workers find them at their
    next poll, BALANCES_POLL_MS, 1 s); seconds until none is queued."""
    started = time.monotonic()
    asyncio.run(
        _one(
            dsn,
            "INSERT INTO balances.tasks (user_id, type, amount)"
            " SELECT $1::bigint + (g % ($2::bigint - $1::bigint + 1)),"
            " CASE WHEN g % 2 = 0 THEN 'replenishment' ELSE 'write-off' END, 1 + g % 997"
            " FROM generate_series(1, $3::int) g ORDER BY g",
            low,
            high,
            count,
        )
    )
    committed = time.monotonic()
    first: list[float] = []

    def drained() -> bool:
        # NOTE: counting 100k queued rows every 50 ms would cost PostgreSQL a share of a
        # core; count until the first is applied, then only ask whether any is left.
        if not first:
            if _queued(dsn) == count:
                return False
            first.append(time.monotonic())
        return not asyncio.run(_one(dsn, ANY_QUEUED))

    wait_until(drained, DRAIN_TIMEOUT_S, f"{count} queued tasks to be applied", interval_s=0.05)
    ended = time.monotonic()
    seconds = ended - committed
    first_s = (first[0] if first else ended) - committed
    log(
        f"    {count} tasks committed in {committed - started:.1f} s, drained in "
        f"{seconds:.2f} s (the first applied after {first_s:.2f} s: the workers' poll)"
    )
    return {
        "tasks": count,
        "seconds": seconds,
        "insert_s": committed - started,
        "first_s": first_s,
        "rate_after_first": count / max(1e-3, ended - first[0]) if first else None,
    }


async def _check(dsn: str) -> list[str]:
    """Every task final; every user's balance and outcomes equal to the in-order replay."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT user_id, type, amount, status, balance_after"
            " FROM balances.tasks ORDER BY user_id, id",
            timeout=DRAIN_TIMEOUT_S,
        )
        balances = dict(await conn.fetch("SELECT id, balance FROM balances.users"))
    finally:
        await conn.close()
    problems, tasks_of = [], {}
    for row in rows:
        tasks_of.setdefault(row["user_id"], []).append(row)
    for user_id, tasks in tasks_of.items():
        expected = replay(OPENING, [(t["type"], t["amount"]) for t in tasks])
        got = [(t["status"], t["balance_after"]) for t in tasks]
        if got != expected.outcomes or balances[user_id] != expected.balance:
            problems.append(f"user {user_id}: outcomes or balance differ from the replay")
    return problems


def measure(out: Results, pg: Postgres, service: Balances, dsn: str, args) -> None:
    low, high = _seed(dsn)
    env = {"USER_MIN": low, "USER_MAX": high}
    log = print
    pg_pid = pg.server.process.pid
    ours_cpu, pg_cpu = service_groups(service.process.pid, pg_pid), service_groups(None, pg_pid)
    print(
        f"\n[1] tasks applied/s end to end vs pgbench -b tpcb-like ({args.clients} clients)",
        flush=True,
    )
    wrk.run(
        service.url("/api/v1/user/1/amount/"),
        LUA / "tasks.lua",
        args.clients,
        1,
        env={**env, "SEED": 99},
    )
    _wait_drained(dsn, "the warm-up's tasks to be applied")
    seeds = iter(range(1, 100))
    ours, peer = alternate(
        lambda: _end_to_end(service, dsn, {**env, "SEED": next(seeds)}, args, log, ours_cpu),
        pgbench_side(pg, "yardstick", "tpcb-like", args.clients, args.duration, pg_cpu),
        args.rounds,
        log,
    )
    out.data["applied"] = {"ours": ours.as_dict(), "pgbench_tpcb": peer.as_dict()}
    add_comparison(
        out,
        "1",
        "tasks applied/s, 202 to final",
        ours,
        peer,
        "tpcb-like",
        TARGETS["applied"],
        latency_what="202 latency",
    )
    accepted = sum(r["accepted_per_s"] for r in ours.runs) / len(ours.runs)
    out.rows.append(
        report.Row("1.acc", "tasks accepted/s (202s) meanwhile", f"{report.rate(accepted)}/s")
    )

    print(f"\n[2] queue drain: {args.queued:,} tasks queued at once", flush=True)
    drain = _drain(dsn, low, high, args.queued, log)
    out.data["drain"] = drain
    out.rows.append(
        report.Row(
            "2",
            f"drain {args.queued:,} queued tasks",
            f"{drain['seconds']:.1f} s",
            f"{args.queued / drain['seconds']:,.0f} tasks/s; first "
            f"after {drain['first_s']:.2f} s (poll)",
        )
    )

    problems = asyncio.run(_check(dsn))
    if problems:
        out.fail(f"replay check: {len(problems)} users differ, e.g. {problems[0]}")
    else:
        out.note(
            "every task final exactly once; every user's balance and outcomes equal "
            "the in-order replay"
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(pg, group, dsn: str) -> None:
        service = group.add(Balances(dsn, group.dir, workers=2, http_workers=HTTP_WORKERS))
        service.start()
        service.wait_ready()
        measure(out, pg, service, dsn, args)

    out = Results("balances", vars(args))
    return run_service_bench(
        out,
        f"{args.duration:g} s per run, {args.rounds} round(s), {args.clients} clients, "
        f"{USERS:,} users",
        args.clients,
        body,
    )


if __name__ == "__main__":
    sys.exit(main())
