"""asyncpg vs psycopg 3: why actors.runtime.pg is built on asyncpg.

    .venv/bin/pip install 'psycopg[binary]' psycopg_pool   # for this measurement only
    .venv/bin/python -m bench.pg_driver [--seconds 3] [--tasks 16] [--rounds 3] [--dsn URI]

Starts a private PostgreSQL (or uses --dsn), then runs TASKS concurrent asyncio tasks in
one process, each taking a pooled connection per query as a service request does
(autocommit, pools sized TASKS), interleaved over ROUNDS:

    asyncpg LazyPool     actors.runtime.pg.LazyPool as the services use it
    asyncpg pool+reset   asyncpg.create_pool defaults (full session reset per release)
    psycopg3 pool        psycopg 3 + psycopg_pool

plus one connection held per task for each driver (the driver without a pool), and
three queries:

    select   SELECT $1::int
    update   UPDATE bench_counters SET n = n + 1 WHERE id = $1   (one row per task,
             so the tasks never wait on each other's row locks; each is a commit)
    rows100  100 rows of (int, text, timestamptz), a list endpoint's page

printing medians of queries per second, the client's CPU time per query, and latency
percentiles. psycopg is not a project
dependency; it is imported only here.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from actors.runtime.pg.pool import LazyPool
from actors.runtime.pg.server import PostgresServer

WARMUP_S = 0.5  # prepared statements cached, pools filled
SELECT_SQL = "SELECT $1::int"
UPDATE_SQL = "UPDATE bench_counters SET n = n + 1 WHERE id = $1"
ROWS_SQL = "SELECT i, md5(i::text), now() FROM generate_series($1, $1 + 99) AS i"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _drive(query, tasks: int, seconds: float) -> tuple[float, list[float], float]:
    """Run query(task_index) on `tasks` tasks: (queries/s, latencies s, client CPU s/query).

    Client CPU per query is the driver's own cost and barely moves with the machine's
    load; queries per second also depend on the server and on whoever shares the cores.
    """
    latencies: list[float] = []
    stop_at = 0.0

    async def worker(index: int, record: bool) -> None:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            await query(index)
            if record:
                latencies.append(time.perf_counter() - started)

    stop_at = time.monotonic() + WARMUP_S
    await asyncio.gather(*(worker(i, False) for i in range(tasks)))
    started, cpu_started = time.monotonic(), time.process_time()
    stop_at = started + seconds
    await asyncio.gather(*(worker(i, True) for i in range(tasks)))
    cpu_per_query_s = (time.process_time() - cpu_started) / max(1, len(latencies))
    return len(latencies) / (time.monotonic() - started), latencies, cpu_per_query_s


QUERIES = (("select", SELECT_SQL), ("update", UPDATE_SQL), ("rows100", ROWS_SQL))


# Each client: async (dsn, tasks) -> (make(sql) -> query(task_index), close()).


async def lazy_pool(dsn: str, tasks: int):
    """asyncpg as the services use it: actors.runtime.pg.LazyPool."""
    pool = LazyPool(dsn, min_size=tasks, max_size=tasks)

    def make(sql: str):
        async def query(index: int) -> None:
            async with pool.acquire() as conn:
                await conn.fetch(sql, index + 1)

        return query

    return make, pool.close


async def asyncpg_pool_reset(dsn: str, tasks: int):
    """A plain asyncpg pool: full session reset (one more round trip) on every release."""
    pool = await asyncpg.create_pool(dsn, min_size=tasks, max_size=tasks)

    def make(sql: str):
        async def query(index: int) -> None:
            async with pool.acquire() as conn:
                await conn.fetch(sql, index + 1)

        return query

    return make, pool.close


async def asyncpg_conns(dsn: str, tasks: int):
    """One asyncpg connection held per task: the driver alone, no pool."""
    conns = [await asyncpg.connect(dsn) for _ in range(tasks)]

    def make(sql: str):
        async def query(index: int) -> None:
            await conns[index].fetch(sql, index + 1)

        return query

    async def close() -> None:
        for conn in conns:
            await conn.close()

    return make, close


async def psycopg_pool(dsn: str, tasks: int):
    """psycopg 3 + psycopg_pool, autocommit, statements prepared after 5 uses."""
    from psycopg_pool import AsyncConnectionPool

    pool = AsyncConnectionPool(
        dsn, min_size=tasks, max_size=tasks, open=False, kwargs={"autocommit": True}
    )
    await pool.open(wait=True)

    def make(sql: str):
        sql = sql.replace("$1", "%(p)s")

        async def query(index: int) -> None:
            async with pool.connection() as conn:
                cursor = await conn.execute(sql, {"p": index + 1})
                if cursor.description:
                    await cursor.fetchall()

        return query

    return make, pool.close


async def psycopg_conns(dsn: str, tasks: int):
    """One psycopg 3 connection held per task: the driver alone, no pool."""
    import psycopg

    conns = [await psycopg.AsyncConnection.connect(dsn, autocommit=True) for _ in range(tasks)]

    def make(sql: str):
        sql = sql.replace("$1", "%(p)s")

        async def query(index: int) -> None:
            cursor = await conns[index].execute(sql, {"p": index + 1})
            if cursor.description:
                await cursor.fetchall()

        return query

    async def close() -> None:
        for conn in conns:
            await conn.close()

    return make, close


CLIENTS = {
    "asyncpg LazyPool": lazy_pool,
    "asyncpg pool+reset": asyncpg_pool_reset,
    "psycopg3 pool": psycopg_pool,
    "asyncpg conn/task": asyncpg_conns,
    "psycopg3 conn/task": psycopg_conns,
}


async def measure(client, dsn: str, tasks: int, seconds: float) -> dict[str, tuple]:
    make, close = await client(dsn, tasks)
    try:
        return {name: await _drive(make(sql), tasks, seconds) for name, sql in QUERIES}
    finally:
        await close()


async def prepare(dsn: str, tasks: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_counters; "
            "CREATE TABLE bench_counters (id int PRIMARY KEY, n bigint NOT NULL)"
        )
        await conn.executemany(
            "INSERT INTO bench_counters VALUES ($1, 0)", [(i + 1,) for i in range(tasks)]
        )
    finally:
        await conn.close()


def report(runs: dict[str, list[dict[str, tuple]]]) -> None:
    """Medians over the rounds: queries/s (with the range), client CPU, latency."""
    print(
        f"{'client':<19} {'query':<7} {'q/s':>8} {'(range over rounds)':>21}"
        f" {'client CPU':>11} {'p50':>8} {'p99':>8}"
    )
    for driver, rounds in runs.items():
        for name, _ in QUERIES:
            ranked = sorted(rounds, key=lambda results: results[name][0])
            rate, latencies, _ = ranked[len(ranked) // 2][name]
            cpu_us = statistics.median(results[name][2] for results in rounds) * 1e6
            cuts = statistics.quantiles(latencies, n=100)
            spread = f"({ranked[0][name][0]:,.0f}-{ranked[-1][name][0]:,.0f})"
            print(
                f"{driver:<19} {name:<7} {rate:>8,.0f} {spread:>21} {cpu_us:>8.0f} us"
                f" {cuts[49] * 1e3:5.2f} ms {cuts[98] * 1e3:5.2f} ms",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per driver and query")
    parser.add_argument("--tasks", type=int, default=16, help="concurrent asyncio tasks")
    parser.add_argument("--rounds", type=int, default=3, help="drivers interleaved, median")
    parser.add_argument("--dsn", default=None, help="an existing database (default: private)")
    args = parser.parse_args(argv)
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        print(
            "pg_driver: .venv/bin/pip install 'psycopg[binary]' psycopg_pool first", file=sys.stderr
        )
        return 1
    root, server, dsn = None, None, args.dsn
    if dsn is None:
        root = Path(tempfile.mkdtemp(prefix="pgbench-driver-"))
        server = PostgresServer(root / "data", free_port())
        server.init()
        server.start()
        dsn = server.create_database("driver_bench")
    try:
        asyncio.run(prepare(dsn, args.tasks))
        print(
            f"{args.tasks} tasks, {args.seconds:g} s per run, {args.rounds} rounds, "
            "one client process",
            flush=True,
        )
        runs: dict[str, list] = {name: [] for name in CLIENTS}
        for _ in range(args.rounds):
            for name, client in CLIENTS.items():
                runs[name].append(asyncio.run(measure(client, dsn, args.tasks, args.seconds)))
        report(runs)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
