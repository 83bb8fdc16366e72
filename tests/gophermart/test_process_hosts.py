"""Two gophermart instances as two "hosts": an order uploaded on A wakes B's poller
through PostgreSQL's LISTEN/NOTIFY, not by its idle poll.

A and B have their own scripted accrual systems, and pollers that sleep a minute when
idle. A's poller is frozen (SIGSTOP), and A's supervisor with it (else its liveness
probe would restart the poller), so every order must be asked by B's, and within a
second of its upload.
"""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import psutil

from actors.gophermart.testing import Gophermart, new_login, new_number
from actors.runtime.testing import wait_until
from bench.common.pg import percentile
from tests.gophermart.fake_accrual import FakeAccrual, processed

ORDERS = 200
IDLE_MS = 60_000
"""The pollers' idle sleep: longer than the whole test, so no order is found by a poll."""
WAKE_LIMIT_S = 1.0


def listeners(dsn: str) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = 'gophermart: poller listen'"
                    " AND datname = current_database()"
                )
            )
        finally:
            await conn.close()

    return asyncio.run(count())


def processed_orders(service: Gophermart) -> int:
    orders = service.get("/api/user/orders").json()
    return sum(o["status"] == "PROCESSED" for o in orders)


def test_an_upload_on_a_is_asked_by_bs_poller_within_a_second(procs, pg_dsn):
    with (
        FakeAccrual(lambda number, _: processed(number, "1")) as fake_a,
        FakeAccrual(lambda number, _: processed(number, "1")) as fake_b,
    ):
        a, b = (
            procs.add(
                Gophermart(pg_dsn, fake.url, procs.dir, name=name, GOPHERMART_IDLE_MS=IDLE_MS)
            )
            for name, fake in (("host-a", fake_a), ("host-b", fake_b))
        )
        for instance in (a, b):
            instance.start()
            instance.wait_ready()
        wait_until(lambda: listeners(pg_dsn) == 2, 20, "both pollers to listen")
        (frozen,) = a.find("gophermart: poller")
        # NOTE: A's supervisor is frozen first: running, its liveness probe would find the
        # poller silent, kill it after 3 s and start one that asks fake_a.
        supervisor = psutil.Process(a.started().pid)
        supervisor.send_signal(signal.SIGSTOP)
        frozen.send_signal(signal.SIGSTOP)
        try:
            a.register(new_login(), "pw")
            latencies = []
            for _ in range(ORDERS):
                number = new_number()
                started = time.monotonic()
                assert a.upload(number).status_code == 202
                asked = wait_until(
                    lambda n=number: [t for t, m in fake_b.requests if m == n],
                    10,
                    f"B's poller to ask about {number}",
                    interval_s=0.001,
                )
                latencies.append(asked[0] - started)
                wait_until(  # the round is over: the next upload finds B's poller idle
                    lambda n=number: processed_orders(a) >= len(latencies),
                    10,
                    f"{number} to be processed",
                    interval_s=0.002,
                )
        finally:
            frozen.send_signal(signal.SIGCONT)
            supervisor.send_signal(signal.SIGCONT)
        latencies.sort()
        print(
            f"\nupload on A -> B's poller asks: {ORDERS} orders, p50"
            f" {percentile(latencies, 50) * 1000:.1f} ms, p99"
            f" {percentile(latencies, 99) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        assert latencies[-1] < WAKE_LIMIT_S
        wait_until(
            lambda: a.get("/api/user/balance").json()["current"] == ORDERS,
            20,
            "every accrual to be credited",
        )
        asked_b = [m for _, m in fake_b.requests]
        assert len(asked_b) == len(set(asked_b)) == ORDERS  # each asked once, by B
        assert fake_a.requests == []
        assert processed_orders(a) == ORDERS
