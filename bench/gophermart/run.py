"""gophermart's benchmarks (issue 10, item 7), ours beside two yardsticks in one run.

    .venv/bin/python -m bench.run gophermart            # ~3 minutes
    .venv/bin/python -m bench.run gophermart --quick    # smoke: ~1 minute

One private PostgreSQL (fsync on) holds gophermart, accrual and pgbench's tables.
Measured, each ours and its yardstick alternately (yardstick, ours, ...):

    1  GET /api/user/balance (wrk, JWT of 1,000 users)   vs the HTTP ceiling
                                                          (and pgbench -S, for context)
    2  POST /api/user/balance/withdraw (new numbers)      vs pgbench -N
    3  orders credited/s by the poller, our accrual        vs pgbench -N
       answering, ORDERS queued at once

same client count everywhere (--clients, default 16). Writes
bench/results/gophermart-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from pathlib import Path

import asyncpg

from actors.accrual.testing import Accrual
from actors.gophermart.auth import issue_token
from actors.gophermart.testing import SECRET, Gophermart
from actors.runtime.testing import ProcGroup, wait_until
from actors.shared.luhn import checksum_digit
from bench.common import args as bench_args
from bench.common import wrk
from bench.common.ceiling import CONSTANT_LUA, Ceiling
from bench.common.cpu import CpuMeter, service_groups, tree_pids
from bench.common.pg import Postgres
from bench.common.results import Results
from bench.common.session import run_service_bench
from bench.common.side import (
    Figure,
    add_comparison,
    alternate,
    combine,
    pgbench_side,
    rate_row,
    wrk_side,
)

LUA = Path(__file__).resolve().parent / "lua"
USERS = 1000
OPENING_KOP = 10**12  # every bench user can withdraw for ever
ACCRUAL_KOP = 100  # each queued order is worth 1.00
HTTP_WORKERS = 2  # gophermart's default, and the ceiling's
POLL_INFLIGHT = 32  # the gophermart engineer's measurement: 2.2k/s at 8, 3-3.5k/s at 16-64
TARGETS = {"balance": 0.45, "withdraw": 0.7, "poller": 0.7}  # issue 20
DRAIN_TIMEOUT_S = 120.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_args.parser("gophermart", __doc__, "smoke run: 3 s per run, 1 round")
    parser.add_argument(
        "--orders",
        type=int,
        help="orders queued for the poller per round (default 10000; quick 2000)",
    )
    args = bench_args.settle(parser.parse_args(argv))
    args.orders = args.orders or (2000 if args.quick else 10_000)
    return args


async def _seed_users(dsn: str) -> list[int]:
    """USERS users with a large balance, straight into the tables (register hashes a
    password for 25 ms; the bench measures the balance routes, not argon2)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            ids = await conn.fetch(
                "INSERT INTO gophermart.users (login, password_hash)"
                " SELECT 'bench-' || g, 'not-a-hash' FROM generate_series(1, $1) g"
                " RETURNING id",
                USERS,
            )
            await conn.execute(
                "INSERT INTO gophermart.balances (user_id, current_kop)"
                " SELECT unnest($1::bigint[]), $2",
                [r["id"] for r in ids],
                OPENING_KOP,
            )
        return [r["id"] for r in ids]
    finally:
        await conn.close()


def _numbers(run: int, count: int) -> list[str]:
    prefixes = [f"7{run:03d}{k:08d}" for k in range(count)]
    return [p + checksum_digit(p) for p in prefixes]


async def _queue_orders(dsn: str, numbers: list[str], user_ids: list[int]) -> None:
    """The orders, final at accrual now, then uploaded to gophermart in one commit."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO accrual.orders (number, goods, outcome, accrual_kop, ready_at)"
            " SELECT unnest($1::text[]), '[]', 'PROCESSED', $2, clock_timestamp()",
            numbers,
            ACCRUAL_KOP,
        )
        owners = [user_ids[k % len(user_ids)] for k in range(len(numbers))]
        await conn.execute(
            "INSERT INTO gophermart.orders (number, user_id)"
            " SELECT unnest($1::text[]), unnest($2::bigint[])",
            numbers,
            owners,
        )
    finally:
        await conn.close()


async def _fetchval(dsn: str, sql: str, *params):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *params)
    finally:
        await conn.close()


def _drain(dsn: str, numbers: list[str], user_ids: list[int], log, cpu: dict) -> Figure:
    """Queue the orders at once; credits/s until the last is PROCESSED."""
    with CpuMeter(cpu, label="poller") as meter:
        figure = _drain_orders(dsn, numbers, user_ids, log)
    figure.cpu_us = meter.per_op_us(len(numbers))
    return figure


def _drain_orders(dsn: str, numbers: list[str], user_ids: list[int], log) -> Figure:
    """The rate is taken from the first credit seen to the last: the orders arrive by
    SQL, not by upload, so no nudge wakes the poller and the first up to
    GOPHERMART_IDLE_MS (0.5 s) is its idle sleep."""
    asyncio.run(_queue_orders(dsn, numbers, user_ids))
    queued = time.monotonic()
    # NOTE: the pending orders are only these; counted through the poller's own partial
    # index, a cheap query (an ANY over 10k numbers every 50 ms cost PostgreSQL more CPU
    # than the poller).
    pending_sql = "SELECT count(*) FROM gophermart.orders WHERE status IN ('NEW', 'PROCESSING')"
    first: tuple[float, int] | None = None

    def all_done() -> bool:
        nonlocal first
        done = len(numbers) - asyncio.run(_fetchval(dsn, pending_sql))
        if done and first is None:
            first = (time.monotonic(), done)
        return done == len(numbers)

    wait_until(all_done, DRAIN_TIMEOUT_S, f"{len(numbers)} orders to be PROCESSED", interval_s=0.05)
    ended = time.monotonic()
    steady_s = max(1e-3, ended - first[0])
    log(
        f"    {len(numbers)} orders credited {ended - queued:.2f} s after they were queued; "
        f"the first {first[1]} after {first[0] - queued:.2f} s, the rest at "
        f"{(len(numbers) - first[1]) / steady_s:,.0f}/s"
    )
    return Figure(
        (len(numbers) - first[1]) / steady_s,
        runs=[
            {
                "orders": len(numbers),
                "drain_s": ended - queued,
                "first_s": first[0] - queued,
                "first_count": first[1],
            }
        ],
    )


def measure(out: Results, pg: Postgres, services: dict, args) -> None:
    gm, ceiling, dsn = services["gophermart"], services["ceiling"], services["dsn"]
    user_ids = asyncio.run(_seed_users(dsn))
    tokens = services["dir"] / "tokens.txt"
    tokens.write_text("\n".join(issue_token(SECRET, uid, 86400) for uid in user_ids) + "\n")
    env = {"TOKENS": tokens, "RUN": secrets.randbelow(8000) + 1000}
    log = print
    pg_pid = pg.server.process.pid
    ours_cpu = service_groups(gm.process.pid, pg_pid)
    ceiling_cpu = {"http": lambda: tree_pids(ceiling.process.pid)}
    pg_cpu = service_groups(None, pg_pid)
    accrual_pid = services["accrual"].process.pid
    accrual_cpu = {"accrual": lambda: tree_pids(accrual_pid)}

    print("\n[1] GET /api/user/balance vs the HTTP ceiling", flush=True)
    balance_url = gm.url("/api/user/balance")
    wrk.run(balance_url, LUA / "balance.lua", args.clients, 1, env=env)
    wrk.run(ceiling.url, CONSTANT_LUA, args.clients, 1)
    ours, peer = alternate(
        wrk_side(balance_url, LUA / "balance.lua", args.clients, args.duration, env, ours_cpu),
        wrk_side(ceiling.url, CONSTANT_LUA, args.clients, args.duration, cpu=ceiling_cpu),
        args.rounds,
        log,
    )
    out.data["balance"] = {"ours": ours.as_dict(), "ceiling": peer.as_dict()}
    add_comparison(out, "1", "GET balance (req/s)", ours, peer, "ceiling", TARGETS["balance"])
    # context, no target: what the same server does for a bare select-only client
    select_only = combine(
        [
            pgbench_side(pg, "yardstick", "-S", args.clients, args.duration, pg_cpu)()
            for _ in range(args.rounds)
        ]
    )
    out.data["balance"]["pgbench_S"] = select_only.as_dict()
    out.rows.append(
        rate_row(
            "1.S", "  GET balance vs pgbench -S (context)", ours, select_only, None, "pgbench -S"
        )
    )

    print("\n[2] POST /api/user/balance/withdraw vs pgbench -N", flush=True)
    withdraw_url = gm.url("/api/user/balance/withdraw")
    runs = iter(range(env["RUN"], env["RUN"] + 100))  # each wrk run its own numbers

    def withdraw() -> Figure:
        return wrk_side(
            withdraw_url,
            LUA / "withdraw.lua",
            args.clients,
            args.duration,
            {**env, "RUN": next(runs)},
            ours_cpu,
        )()

    wrk.run(withdraw_url, LUA / "withdraw.lua", args.clients, 1, env={**env, "RUN": 999})
    ours, peer_n = alternate(
        withdraw,
        pgbench_side(pg, "yardstick", "-N", args.clients, args.duration, pg_cpu),
        args.rounds,
        log,
    )
    out.data["withdraw"] = {"ours": ours.as_dict(), "pgbench_N": peer_n.as_dict()}
    add_comparison(out, "2", "withdraw (req/s)", ours, peer_n, "pgbench -N", TARGETS["withdraw"])

    print(f"\n[3] poller: {args.orders} orders queued at once vs pgbench -N", flush=True)
    rounds = iter(range(1, args.rounds + 1))
    ours, peer = alternate(
        lambda: _drain(
            dsn, _numbers(next(rounds), args.orders), user_ids, log, {**ours_cpu, **accrual_cpu}
        ),
        pgbench_side(pg, "yardstick", "-N", args.clients, args.duration, pg_cpu),
        args.rounds,
        log,
    )
    credited = int(
        asyncio.run(
            _fetchval(
                dsn,
                "SELECT sum(current_kop + withdrawn_kop) - $1::bigint * count(*)"
                " FROM gophermart.balances",
                OPENING_KOP,
            )
        )
    )
    expected = args.rounds * args.orders * ACCRUAL_KOP
    out.data["poller"] = {
        "ours": ours.as_dict(),
        "pgbench_N": peer.as_dict(),
        "inflight": POLL_INFLIGHT,
        "credited_kop": credited,
        "expected_kop": expected,
    }
    add_comparison(
        out,
        "3",
        f"poller credits/s ({args.orders} queued)",
        ours,
        peer,
        "pgbench -N",
        TARGETS["poller"],
    )
    if credited != expected:
        out.fail(f"3: credited {credited} kopecks in all, expected {expected} (exactly once)")
    else:
        out.note(f"3: every order credited exactly once ({credited} kopecks in all)")


def _start(group: ProcGroup, dsn: str) -> dict:
    accrual = group.add(Accrual(dsn, group.dir, workers=HTTP_WORKERS, ACCRUAL_DELAY_MS=0))
    accrual.start()
    accrual.wait_ready()
    gm = group.add(
        Gophermart(
            dsn,
            accrual.base,
            group.dir,
            workers=HTTP_WORKERS,
            GOPHERMART_POLL_INFLIGHT=POLL_INFLIGHT,
        )
    )
    ceiling = group.add(Ceiling(group.dir, workers=HTTP_WORKERS))
    gm.start()
    ceiling.start()
    gm.wait_ready()
    ceiling.wait_ready()
    return {"accrual": accrual, "gophermart": gm, "ceiling": ceiling, "dsn": dsn, "dir": group.dir}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Results("gophermart", vars(args))
    return run_service_bench(
        out,
        f"{args.duration:g} s per run, {args.rounds} round(s), {args.clients} clients, "
        f"{HTTP_WORKERS} HTTP workers, poller inflight {POLL_INFLIGHT}",
        1,
        lambda pg, group, dsn: measure(out, pg, _start(group, dsn), args),
    )


if __name__ == "__main__":
    sys.exit(main())
