"""What a wake-up through PostgreSQL costs: the numbers behind actors.runtime.pg.notify
and the ipc nudge kept beside it (actors/balances/nudger.py).

    .venv/bin/python -m bench.pg_notify [--rounds 3] [--seconds 4] [--clients 16] [--wakes 3000]

Starts a private PostgreSQL (fsync on), then, interleaved over ROUNDS:

    enqueue   CLIENTS tasks enqueueing balances tasks as fast as they can (store.
              enqueue_task), three ways: plain; plus a Notifier.notify of the task's
              shard after each commit; with pg_notify inside the enqueue statement.
              Enqueues per second, and CPU (this process with its Listener, plus every
              PostgreSQL process) per enqueue.
    wake      one wake-up at a time, WAKES of them: an AsyncClient.tell to a ROUTER in
              this process (the ipc nudge) vs Notifier.notify -> PostgreSQL -> Listener.
              CPU and wall time per wake-up.

CPU per operation moves little on a shared machine; rates and wall times do.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import zmq
import zmq.asyncio

from actors.balances import store
from actors.balances.messages import Nudge
from actors.runtime import protocol
from actors.runtime.client import AsyncClient
from actors.runtime.pg import migrate
from actors.runtime.pg.listen import Listener
from actors.runtime.pg.notify import Notifier
from actors.runtime.pg.pool import LazyPool
from actors.runtime.pg.server import PostgresServer
from actors.runtime.testing import free_port
from bench.common import cpu

IN_STATEMENT = """
WITH lock AS (SELECT pg_advisory_xact_lock($4, ($1::bigint % 2147483647)::int))
INSERT INTO balances.tasks (user_id, type, amount) SELECT $1::bigint, $2, $3::bigint FROM lock
RETURNING id, pg_notify($5, '')"""
"""store.enqueue_task's statement (no Idempotency-Key) with the NOTIFY inside it."""
ENQUEUE_LOCK_CLASS = 0x62616C71


def cpu_seconds(server: PostgresServer) -> float:
    """CPU of this process and of every process of the server."""
    assert server.process is not None
    postmaster = psutil.Process(server.process.pid)
    return cpu.cpu_seconds([psutil.Process(), postmaster, *postmaster.children(recursive=True)])


async def enqueue(server: PostgresServer, dsn: str, how: str, clients: int, seconds: float):
    pool = LazyPool(dsn, max_size=clients)
    users = [
        (await store.create_user(pool, f"{how}-{time.monotonic_ns()}-{i}", 0)).id
        for i in range(clients)
    ]
    notifier = Notifier(pool)
    listener = Listener(dsn, lambda channel, payload: None)
    await listener.listen_to(store.shard_channel(s) for s in range(store.SHARDS))
    listening = asyncio.create_task(listener.run())
    count = 0

    async def client(user: int, stop: float) -> None:
        nonlocal count
        channel = store.shard_channel(store.shard_of(user))
        while time.monotonic() < stop:
            if how == "in statement":
                async with pool.acquire() as conn:
                    await conn.fetchrow(
                        IN_STATEMENT, user, "replenishment", 1, ENQUEUE_LOCK_CLASS, channel
                    )
            else:
                await store.enqueue_task(pool, user, "replenishment", 1)
                if how == "notify after":
                    notifier.notify(channel)
            count += 1

    try:
        before = cpu_seconds(server)
        stop = time.monotonic() + seconds
        await asyncio.gather(*(client(u, stop) for u in users))
        await asyncio.sleep(0.2)  # the last notifications delivered
        used = cpu_seconds(server) - before
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await listener.close()
        await pool.close()
    return count / seconds, used / count * 1e6


async def pingpong(server: PostgresServer, wakes: int, once: Callable[[], Awaitable[None]]):
    await once()
    before, started = cpu_seconds(server), time.monotonic()
    for _ in range(wakes):
        await once()
    return (cpu_seconds(server) - before) / wakes * 1e6, (time.monotonic() - started) / wakes * 1e6


async def wake_ipc(server: PostgresServer, run_dir: Path, wakes: int):
    ctx = zmq.asyncio.Context.instance()
    endpoint = f"ipc://{run_dir}/bench-nudge.sock"
    router = ctx.socket(zmq.ROUTER)
    router.linger = 0
    router.bind(endpoint)
    client = AsyncClient(endpoint, peer="bench")

    async def once() -> None:
        client.tell(Nudge([1]))
        _, body = await router.recv_multipart()
        protocol.unbatch(*protocol.decode(body))

    try:
        return await pingpong(server, wakes, once)
    finally:
        client.close()
        router.close(0)


async def wake_notify(server: PostgresServer, dsn: str, wakes: int):
    pool = LazyPool(dsn, max_size=2)
    woken: asyncio.Queue[None] = asyncio.Queue()
    listener = Listener(
        dsn,
        lambda channel, payload: woken.put_nowait(None),
        on_connect=lambda: woken.put_nowait(None),
    )
    await listener.listen_to(["bench"])
    listening = asyncio.create_task(listener.run())
    await woken.get()  # connected
    notifier = Notifier(pool)

    async def once() -> None:
        notifier.notify("bench")
        await woken.get()

    try:
        return await pingpong(server, wakes, once)
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await listener.close()
        await pool.close()


async def measure(args: argparse.Namespace, server: PostgresServer, run_dir: Path) -> None:
    dsn = server.create_database("bench_notify")
    await migrate(dsn, "balances", store.SCHEMA_DIR)
    results: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for how in ("plain", "notify after", "in statement"):
            results.setdefault(f"enqueue {how}", []).append(
                await enqueue(server, dsn, how, args.clients, args.seconds)
            )
        results.setdefault("wake ipc", []).append(await wake_ipc(server, run_dir, args.wakes))
        results.setdefault("wake notify", []).append(await wake_notify(server, dsn, args.wakes))
    print(f"{'':>22} {'median':>24}   rounds")
    for name, values in results.items():
        rate_or_cpu = [round(a) for a, _ in values]
        second = [round(b) for _, b in values]
        first_label, second_label = (
            ("enqueues/s", "us CPU/enqueue")
            if name.startswith("enqueue")
            else ("us CPU/wake", "us wall/wake")
        )
        print(
            f"{name:>22} {statistics.median(rate_or_cpu):>8} {first_label:<14}"
            f" {statistics.median(second):>6} {second_label:<15} {rate_or_cpu} {second}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--wakes", type=int, default=3000)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-pg-notify-"))
    server = PostgresServer(root / "data", free_port())
    try:
        server.init()
        server.start()
        asyncio.run(measure(args, server, root))
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
