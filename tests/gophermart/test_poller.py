"""The accrual poller in process against a real PostgreSQL and a scripted accrual
system: nudged orders are credited within a second and once, 429 pauses every request
for Retry-After (also for a second poller, through the database), failures back off,
two pollers never ask about one order at once, and the HTTP client copes."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time

import pytest

from actors.gophermart import store
from actors.gophermart.accrual_client import AccrualClient, parse_retry_after
from actors.gophermart.poller import Poller
from actors.shared.luhn import checksum_digit
from tests.gophermart.fake_accrual import (
    FakeAccrual,
    fail,
    processed,
    status,
    too_many,
    unknown,
)

_seq = itertools.count(1)
WAIT_S = 10.0


def new_number() -> str:
    prefix = f"3{next(_seq):010d}"
    return prefix + checksum_digit(prefix)


def new_user(db, loop) -> int:
    return loop.run(store.create_user(db, f"poll-{next(_seq)}", "hash"))


@contextlib.asynccontextmanager
async def running(db, url: str, owner: str = "test:1", inflight: int = 8):
    client = AccrualClient(url, max_connections=inflight, timeout_s=2.0)
    poller = Poller(db, client, owner, inflight=inflight, lease_s=5)
    task = asyncio.create_task(poller.run())
    try:
        yield poller
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.close()


async def wait_final(db, user: int, count: int, timeout_s: float = WAIT_S) -> list:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        orders = await store.list_orders(db, user)
        if sum(o.status in ("PROCESSED", "INVALID") for o in orders) >= count:
            return orders
        await asyncio.sleep(0.02)
    raise AssertionError(f"orders not final after {timeout_s} s: {orders}")


def test_nudged_order_is_credited_within_a_second_and_once(db, loop):
    user = new_user(db, loop)
    number = new_number()
    with FakeAccrual(lambda n, i: processed(n, "729.98")) as fake:

        async def scenario():
            async with running(db, fake.url) as poller:
                await asyncio.sleep(0.6)  # the poller idles: nothing is due
                await store.upload_order(db, user, number)
                started = time.monotonic()
                poller.nudge()
                [order] = await wait_final(db, user, 1, timeout_s=1.0)
                elapsed = time.monotonic() - started
                await asyncio.sleep(0.3)
                return order, elapsed

        order, elapsed = loop.run(scenario())
    assert (order.status, order.accrual_kop) == ("PROCESSED", 72998)
    assert elapsed < 1.0
    assert fake.count(number) == 1
    assert loop.run(store.get_balance(db, user)).current_kop == 72998


def test_statuses_map_and_pending_orders_are_asked_again(db, loop):
    user = new_user(db, loop)
    pending, invalid, later = new_number(), new_number(), new_number()

    def script(number, index):
        if number == invalid:
            return status(number, "INVALID")
        if number == later and index == 0:
            return unknown()
        if index < 2:
            return status(number, "REGISTERED" if index == 0 else "PROCESSING")
        return processed(number, "10")

    for number in (pending, invalid, later):
        loop.run(store.upload_order(db, user, number))
    with FakeAccrual(script) as fake:

        async def scenario():
            async with running(db, fake.url):
                return await wait_final(db, user, 3)

        orders = {o.number: o for o in loop.run(scenario())}
    assert (orders[pending].status, orders[pending].accrual_kop) == ("PROCESSED", 1000)
    assert (orders[invalid].status, orders[invalid].accrual_kop) == ("INVALID", None)
    assert orders[later].status == "PROCESSED"
    assert fake.count(pending) == 3 and fake.count(invalid) == 1
    assert loop.run(store.get_balance(db, user)).current_kop == 2000


def test_429_pauses_every_request_and_is_shared(db, loop):
    user = new_user(db, loop)
    first, others = new_number(), [new_number() for _ in range(5)]
    said_429 = []

    def script(number, index):
        if not said_429:
            said_429.append(time.monotonic())
            return too_many(2)
        return processed(number, "1")

    with FakeAccrual(script) as fake:

        async def scenario():
            async with (
                running(db, fake.url, owner="a:1") as one,
                running(db, fake.url, owner="b:2") as two,
            ):
                await store.upload_order(db, user, first)
                one.nudge()
                while not said_429:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.2)
                for number in others:  # uploads and nudges during the pause
                    await store.upload_order(db, user, number)
                    one.nudge()
                    two.nudge()
                return await wait_final(db, user, 6)

        loop.run(scenario())
    after = [t - said_429[0] for t in fake.times()[1:]]
    assert after and min(after) >= 2.0 - 0.05, after
    assert loop.run(store.get_balance(db, user)).current_kop == 600


def test_failures_back_off(db, loop):
    user = new_user(db, loop)
    number = new_number()
    loop.run(store.upload_order(db, user, number))
    with FakeAccrual(lambda n, i: fail()) as fake:

        async def scenario():
            async with running(db, fake.url):
                await asyncio.sleep(2.5)

        loop.run(scenario())
    assert 1 <= fake.count(number) <= 3  # 1 s, then 2 s apart at least: not hammered
    [order] = loop.run(store.list_orders(db, user))
    assert order.status == "NEW"
    loop.run(store.finish_orders(db, [store.Final(number, "INVALID", None)]))


def test_two_pollers_share_the_work_without_overlap(db, loop):
    users = [new_user(db, loop) for _ in range(4)]
    numbers = {}
    for user in users:
        for _ in range(25):
            number = new_number()
            numbers[number] = user
            loop.run(store.upload_order(db, user, number))
    with FakeAccrual(lambda n, i: processed(n, "0.01"), delay_s=0.002) as fake:

        async def scenario():
            async with (
                running(db, fake.url, owner="a:1", inflight=4),
                running(db, fake.url, owner="b:2", inflight=4),
            ):
                for user in users:
                    await wait_final(db, user, 25)

        loop.run(scenario())
    assert fake.overlaps == 0
    assert all(fake.count(n) == 1 for n in numbers)
    for user in users:
        assert loop.run(store.get_balance(db, user)).current_kop == 25


@pytest.mark.parametrize(
    "value, seconds",
    [
        ("7", 7.0),
        (None, 60.0),
        ("soon", 60.0),
        ("99999", 3600.0),
        ("\u00b2", 60.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
    ],
)
def test_retry_after_parsing(value, seconds):
    assert parse_retry_after(value) == seconds


def test_client_reuses_connections_and_survives_a_closed_one(loop):
    with FakeAccrual(lambda n, i: processed(n, "5")) as fake:

        async def scenario():
            client = AccrualClient(fake.url, max_connections=2)
            answers = await asyncio.gather(*(client.ask(str(i)) for i in range(10)))
            idle = len(client._idle)
            for _, writer in client._idle:  # the server "closes" kept-alive connections
                writer.transport.abort()
            again = await client.ask("42")
            await client.close()
            return answers, idle, again

        answers, idle, again = loop.run(scenario())
    assert all(a.kind == "final" and a.accrual_kop == 500 for a in answers)
    assert idle <= 2
    assert again.kind == "final"


def test_client_reports_refused_and_garbage(loop):
    async def scenario():
        refused = await AccrualClient("http://127.0.0.1:9", timeout_s=1).ask("1")
        return refused

    assert loop.run(scenario()).kind == "failed"
    with FakeAccrual(lambda n, i: (200, {}, b"{not json")) as fake:
        garbage = loop.run(AccrualClient(fake.url).ask("1"))
    assert garbage.kind == "failed" and "bad body" in garbage.reason
