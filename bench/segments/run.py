"""segments' benchmarks (issue 11, item 8), ours beside the yardsticks in one run.

    .venv/bin/python -m bench.run segments            # ~3-4 minutes
    .venv/bin/python -m bench.run segments --quick    # smoke: ~1 minute

One private PostgreSQL (fsync on) holds segments' and pgbench's tables. USERS users are
known up front (rows in segments.users) and the first HOT of them hold a few of SLUGS.

    1  GET /api/users/{id}/segments (wrk, HOT users)    vs the HTTP ceiling
    2  POST /api/users/{id}/segments, add one + remove   vs pgbench -N
       another of SLUGS (HOT users)
    3  POST /api/segments {"percent": 50} over USERS known users: seconds, the
       service's peak RSS (sum of its processes, and the largest one)
    4  deleting that segment (a "remove" row per member), then the month's history CSV
       (>= 1M rows in the full run): seconds, rows/s, peak RSS: flat, not growing with rows

same client count for wrk and pgbench (--clients, default 16). Writes
bench/results/segments-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import time
from pathlib import Path

import asyncpg
import requests

from actors.segments.testing import Segments
from bench import report
from bench.common import args as bench_args
from bench.common import wrk
from bench.common.ceiling import CONSTANT_LUA, Ceiling
from bench.common.cpu import service_groups, tree_pids
from bench.common.errors import BenchError
from bench.common.pg import Postgres
from bench.common.results import Results
from bench.common.rss import PeakRss
from bench.common.session import run_service_bench
from bench.common.side import add_comparison, alternate, pgbench_side, wrk_side

LUA = Path(__file__).resolve().parent / "lua"
HTTP_WORKERS = 2  # segments' default, and the ceiling's
HOT = 100_000  # users the wrk scripts pick from
SLUGS = [f"BENCH_{k}" for k in range(10)]
TARGETS = {"get": 0.45, "change": 0.6}  # issue 20
BULK_TIMEOUT_S = 600.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = bench_args.parser(
        "segments", __doc__, "smoke run: 3 s per run, 1 round, 100k known users"
    )
    parser.add_argument(
        "--users", type=int, help="known users for the 50%% segment (default 1000000; quick 100000)"
    )
    args = bench_args.settle(parser.parse_args(argv))
    args.users = args.users or (100_000 if args.quick else 1_000_000)
    return args


async def _sql(dsn: str, *statements: tuple) -> list:
    conn = await asyncpg.connect(dsn)
    try:
        return [
            await conn.fetchval(sql, *params, timeout=BULK_TIMEOUT_S) for sql, *params in statements
        ]
    finally:
        await conn.close()


def _seed(service: Segments, dsn: str, users: int) -> None:
    """SLUGS through the API, then `users` known users and the HOT ones' memberships
    straight into the tables (what years of first requests would have left)."""
    for slug in SLUGS:
        response = service.post("/api/segments", {"slug": slug})
        if response.status_code != 201:
            raise BenchError(f"create {slug}: {response.status_code} {response.text}")
    asyncio.run(
        _sql(
            dsn,
            ("INSERT INTO segments.users (id) SELECT generate_series(1, $1::bigint)", users),
            # each hot user holds 3 of the 10 slugs, by a fixed pattern
            (
                "INSERT INTO segments.memberships (user_id, segment_id)"
                " SELECT u, s.id FROM generate_series(1, $1::bigint) u"
                " JOIN segments.segments s ON s.slug = ANY($2::text[])"
                " AND (u + s.id) % 10 < 3",
                min(HOT, users),
                SLUGS,
            ),
            ("ANALYZE",),
        )
    )


def _timed(out: Results, service: Segments, what: str, send) -> tuple[float, dict, object]:
    pid = service.process.pid
    with PeakRss(pid) as rss:
        started = time.monotonic()
        response = send()
        seconds = time.monotonic() - started
    print(
        f"  {what}: {seconds:.2f} s, RSS {rss.before_total_mb:.0f} -> peak "
        f"{rss.peak_total_mb:.0f} MiB in all, largest process {rss.before_largest_mb:.0f} "
        f"-> {rss.peak_largest_mb:.0f} MiB",
        flush=True,
    )
    return seconds, rss.as_dict(), response


def _rss_row(id_: str, rss: dict) -> report.Row:
    """Peak RSS during the step: all the service's processes / the largest one."""
    return report.Row(
        id_,
        "  peak RSS: all processes / largest",
        f"{rss['peak_total_mb']:.0f} / {rss['peak_largest_mb']:.0f} MiB",
        f"before: {rss['before_total_mb']:.0f} / {rss['before_largest_mb']:.0f} MiB",
    )


def bulk(out: Results, service: Segments, dsn: str, users: int) -> None:
    print(f"\n[3] a 50% segment over {users:,} known users", flush=True)
    seconds, rss, response = _timed(
        out,
        service,
        "create",
        lambda: requests.post(
            service.url("/api/segments"),
            json={"slug": "BENCH_HALF", "percent": 50},
            timeout=BULK_TIMEOUT_S,
        ),
    )
    if response.status_code != 201:
        raise BenchError(f"percent create: {response.status_code} {response.text[:300]}")
    assigned = response.json()["users_assigned"]
    out.data["create_50"] = {"users": users, "assigned": assigned, "seconds": seconds, "rss": rss}
    out.rows.append(
        report.Row(
            "3",
            f"create 50% over {users:,} users",
            f"{seconds:.1f} s",
            f"{assigned / seconds:,.0f} assigned/s",
        )
    )
    out.rows.append(_rss_row("3.rss", rss))

    print("\n[4] delete it, then the month's history as CSV", flush=True)
    seconds, rss, response = _timed(
        out,
        service,
        "delete",
        lambda: requests.delete(service.url("/api/segments/BENCH_HALF"), timeout=BULK_TIMEOUT_S),
    )
    if response.status_code != 204:
        raise BenchError(f"delete: {response.status_code} {response.text[:300]}")
    out.data["delete_50"] = {"seconds": seconds, "rss": rss}
    out.rows.append(report.Row("4a", f"delete it ({assigned:,} members)", f"{seconds:.1f} s"))

    month = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")

    def stream() -> int:
        with requests.get(
            service.url(f"/api/history/{month}.csv"), stream=True, timeout=BULK_TIMEOUT_S
        ) as reply:
            if reply.status_code != 200:
                raise BenchError(f"CSV: {reply.status_code} {reply.text[:300]}")
            lines = sum(chunk.count(b"\n") for chunk in reply.iter_content(1 << 16))
        return lines - 1  # the header

    seconds, rss, rows = _timed(out, service, "history CSV", stream)
    out.data["history_csv"] = {"rows": rows, "seconds": seconds, "rss": rss}
    out.rows.append(
        report.Row(
            "4b",
            f"history CSV ({rows:,} rows)",
            f"{seconds:.1f} s",
            f"{rows / seconds:,.0f} rows/s",
        )
    )
    out.rows.append(_rss_row("4b.rss", rss))


def measure(
    out: Results, pg: Postgres, service: Segments, ceiling: Ceiling, dsn: str, args
) -> None:
    started = time.monotonic()
    _seed(service, dsn, args.users)
    print(f"  seeded {args.users:,} known users in {time.monotonic() - started:.1f} s", flush=True)
    hot = min(HOT, args.users)
    env = {"USERS": hot, "SLUGS": ",".join(SLUGS)}
    pg_pid = pg.server.process.pid
    ours_cpu = service_groups(service.process.pid, pg_pid)
    ceiling_cpu = {"http": lambda: tree_pids(ceiling.process.pid)}
    pg_cpu = service_groups(None, pg_pid)

    print("\n[1] GET /api/users/{id}/segments vs the HTTP ceiling", flush=True)
    get_url = service.url("/api/users/1/segments")
    wrk.run(get_url, LUA / "user_get.lua", args.clients, 1, env=env)
    wrk.run(ceiling.url, CONSTANT_LUA, args.clients, 1)
    ours, peer = alternate(
        wrk_side(get_url, LUA / "user_get.lua", args.clients, args.duration, env, ours_cpu),
        wrk_side(ceiling.url, CONSTANT_LUA, args.clients, args.duration, cpu=ceiling_cpu),
        args.rounds,
    )
    out.data["get"] = {"ours": ours.as_dict(), "ceiling": peer.as_dict()}
    add_comparison(out, "1", "GET user segments (req/s)", ours, peer, "ceiling", TARGETS["get"])

    print("\n[2] POST /api/users/{id}/segments vs pgbench -N", flush=True)
    wrk.run(get_url, LUA / "user_change.lua", args.clients, 1, env=env)
    ours, peer = alternate(
        wrk_side(get_url, LUA / "user_change.lua", args.clients, args.duration, env, ours_cpu),
        pgbench_side(pg, "yardstick", "-N", args.clients, args.duration, pg_cpu),
        args.rounds,
    )
    out.data["change"] = {"ours": ours.as_dict(), "pgbench_N": peer.as_dict()}
    add_comparison(
        out, "2", "user segment changes (req/s)", ours, peer, "pgbench -N", TARGETS["change"]
    )

    bulk(out, service, dsn, args.users)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def body(pg, group, dsn: str) -> None:
        service = group.add(Segments(dsn, group.dir, workers=HTTP_WORKERS))
        ceiling = group.add(Ceiling(group.dir, workers=HTTP_WORKERS))
        service.start()
        ceiling.start()
        service.wait_ready()
        ceiling.wait_ready()
        measure(out, pg, service, ceiling, dsn, args)

    out = Results("segments", vars(args))
    return run_service_bench(
        out,
        f"{args.duration:g} s per run, {args.rounds} round(s), {args.clients} clients, "
        f"{HTTP_WORKERS} HTTP workers, {args.users:,} known users",
        1,
        body,
    )


if __name__ == "__main__":
    sys.exit(main())
