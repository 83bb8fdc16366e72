"""Upload -> credit latency of one order at a time: how fast a wake-up reaches the poller.

    .venv/bin/python -m bench.gophermart.upload_latency [--orders 100]

One private PostgreSQL, our accrual (every order final at once: its row is written
before the upload) and one gophermart whose poller sleeps a minute when idle, so every
credit within the run was started by a wake-up, not by the idle poll. Per order: the
time from sending POST /api/user/orders to the order being PROCESSED in the database
(watched every millisecond on one connection), and, as the yardstick measured in the
same run, the POST's own round trip. Prints percentiles of both, and of their difference
per order (from the 202 to the credit: the wake-up, the ask, the crediting commit).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from actors.accrual.testing import Accrual
from actors.gophermart.testing import Gophermart, new_login, new_number
from actors.runtime.testing import ProcGroup
from bench.common.pg import Postgres, percentile

IDLE_MS = 60_000
"""The poller's idle sleep: longer than the run, so no order is found by a poll."""
WATCH_INTERVAL_S = 0.001
CREDIT_TIMEOUT_S = 10.0
ACCRUAL_KOP = 100


async def _measure(gophermart: Gophermart, dsn: str, orders: int) -> tuple[list, list]:
    conn = await asyncpg.connect(dsn)
    credits: list[float] = []
    posts: list[float] = []
    try:
        for _ in range(orders):
            number = new_number()
            await conn.execute(
                "INSERT INTO accrual.orders (number, goods, outcome, accrual_kop, ready_at)"
                " VALUES ($1, '[]', 'PROCESSED', $2, clock_timestamp())",
                number,
                ACCRUAL_KOP,
            )
            sent = time.monotonic()
            response = await asyncio.to_thread(gophermart.upload, number)
            posts.append(time.monotonic() - sent)
            if response.status_code != 202:
                raise SystemExit(f"upload: {response.status_code} {response.text}")
            deadline = sent + CREDIT_TIMEOUT_S
            while await conn.fetchval(
                "SELECT status <> 'PROCESSED' FROM gophermart.orders WHERE number = $1", number
            ):
                if time.monotonic() > deadline:
                    raise SystemExit(f"order {number} not credited in {CREDIT_TIMEOUT_S} s")
                await asyncio.sleep(WATCH_INTERVAL_S)
            credits.append(time.monotonic() - sent)
    finally:
        await conn.close()
    return credits, posts


def _line(what: str, values: list[float]) -> str:
    ordered = sorted(values)
    p50, p90, p99 = (percentile(ordered, p) * 1000 for p in (50, 90, 99))
    return f"  {what:<28} p50 {p50:7.2f} ms   p90 {p90:7.2f} ms   p99 {p99:7.2f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100)
    args = parser.parse_args(argv)
    with Postgres("gm-latency") as pg, tempfile.TemporaryDirectory() as tmp:
        dsn = pg.create_database("gophermart")
        group = ProcGroup(Path(tmp))
        try:
            accrual = group.add(Accrual(dsn, group.dir, ACCRUAL_DELAY_MS=0))
            accrual.start()
            accrual.wait_ready()
            gophermart = group.add(
                Gophermart(dsn, accrual.base, group.dir, GOPHERMART_IDLE_MS=IDLE_MS)
            )
            gophermart.start()
            gophermart.wait_ready()
            gophermart.register(new_login(), "bench-password")
            credits, posts = asyncio.run(_measure(gophermart, dsn, args.orders))
        finally:
            problems = group.stop_all()
    print(f"{args.orders} orders, one at a time (shared machine):")
    print(_line("upload -> credited", credits))
    print(_line("POST round trip (yardstick)", posts))
    print(_line("answered -> credited", [c - p for c, p in zip(credits, posts, strict=True)]))
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
