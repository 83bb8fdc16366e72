"""gophermart.store against a real PostgreSQL: users, orders, balance, withdrawals,
and the poller's leases, credits and shared pause."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from actors.gophermart import store
from actors.gophermart.store import Final, Retry
from actors.runtime.testing import wait_until
from actors.shared.luhn import checksum_digit

_seq = itertools.count(1)

RETRY_S = 1.0
"""A retry's delay: long enough that a busy machine cannot let it pass unseen."""


def new_login(prefix: str = "user") -> str:
    return f"{prefix}-{next(_seq)}"


def new_number() -> str:
    prefix = f"7{next(_seq):09d}"
    return prefix + checksum_digit(prefix)


def make_user(db, loop) -> int:
    return loop.run(store.create_user(db, new_login(), "hash"))


def test_users_unique_login(db, loop):
    login = new_login("alice")
    user_id = loop.run(store.create_user(db, login, "h1"))
    assert loop.run(store.find_user(db, login)) == (user_id, "h1")
    with pytest.raises(store.LoginTaken):
        loop.run(store.create_user(db, login, "h2"))
    assert loop.run(store.find_user(db, "nobody-" + login)) is None
    assert loop.run(store.get_balance(db, user_id)) == store.Balance(0, 0)


def test_upload_new_same_user_other_user(db, loop):
    alice, bob = make_user(db, loop), make_user(db, loop)
    number = new_number()
    assert loop.run(store.upload_order(db, alice, number)) is True
    assert loop.run(store.upload_order(db, alice, number)) is False
    with pytest.raises(store.OrderOwnedByAnother):
        loop.run(store.upload_order(db, bob, number))
    orders = loop.run(store.list_orders(db, alice))
    assert [(o.number, o.status, o.accrual_kop) for o in orders] == [(number, "NEW", None)]
    assert loop.run(store.list_orders(db, bob)) == []


def test_racing_uploads_of_one_number_have_one_owner(db, loop):
    users = [make_user(db, loop) for _ in range(6)]
    number = new_number()

    async def race():
        return await asyncio.gather(
            *(store.upload_order(db, u, number) for u in users), return_exceptions=True
        )

    results = loop.run(race())
    assert results.count(True) == 1
    assert all(isinstance(r, store.OrderOwnedByAnother) for r in results if r is not True)


def test_orders_listed_oldest_first(db, loop):
    user = make_user(db, loop)
    numbers = [new_number() for _ in range(4)]
    for number in numbers:
        loop.run(store.upload_order(db, user, number))
    listed = loop.run(store.list_orders(db, user))
    assert [o.number for o in listed] == numbers
    assert all(o.uploaded_at.tzinfo is not None for o in listed)


def credit(db, loop, user: int, kop: int) -> str:
    number = new_number()
    loop.run(store.upload_order(db, user, number))
    loop.run(store.finish_orders(db, [Final(number, "PROCESSED", kop)]))
    return number


def test_credit_exactly_once(db, loop):
    user = make_user(db, loop)
    number = credit(db, loop, user, 72998)
    again = loop.run(store.finish_orders(db, [Final(number, "PROCESSED", 72998)]))
    assert again == 0
    assert loop.run(store.get_balance(db, user)) == store.Balance(72998, 0)
    [order] = loop.run(store.list_orders(db, user))
    assert (order.status, order.accrual_kop) == ("PROCESSED", 72998)
    invalid = new_number()
    loop.run(store.upload_order(db, user, invalid))
    assert loop.run(store.finish_orders(db, [Final(invalid, "INVALID", None)])) == 1
    assert loop.run(store.finish_orders(db, [Final(invalid, "PROCESSED", 500)])) == 0
    assert loop.run(store.get_balance(db, user)) == store.Balance(72998, 0)


def test_concurrent_finishes_credit_once(db, loop):
    users = [make_user(db, loop) for _ in range(3)]
    finals = []
    for user in users:
        for _ in range(5):
            number = new_number()
            loop.run(store.upload_order(db, user, number))
            finals.append(Final(number, "PROCESSED", 100))

    async def race():
        batches = [finals, list(reversed(finals)), finals[::2] + finals[1::2]]
        return await asyncio.gather(*(store.finish_orders(db, b) for b in batches * 2))

    assert sum(loop.run(race())) == len(finals)
    for user in users:
        assert loop.run(store.get_balance(db, user)).current_kop == 500


def test_withdraw_statuses(db, loop):
    user = make_user(db, loop)
    credit(db, loop, user, 72998)
    order = new_number()
    after = loop.run(store.withdraw(db, user, order, 50000))
    assert after == store.Balance(22998, 50000)
    with pytest.raises(store.OrderAlreadyWithdrawn):
        loop.run(store.withdraw(db, user, order, 1))
    with pytest.raises(store.InsufficientFunds):
        loop.run(store.withdraw(db, user, new_number(), 22999))
    other = make_user(db, loop)
    credit(db, loop, other, 10)
    with pytest.raises(store.OrderAlreadyWithdrawn):  # numbers are global
        loop.run(store.withdraw(db, other, order, 1))
    assert loop.run(store.get_balance(db, user)) == store.Balance(22998, 50000)
    [w] = loop.run(store.list_withdrawals(db, user))
    assert (w.order, w.sum_kop) == (order, 50000)
    assert loop.run(store.list_withdrawals(db, other)) == []


def test_refused_withdrawal_leaves_nothing(db, loop):
    user = make_user(db, loop)
    order = new_number()
    with pytest.raises(store.InsufficientFunds):
        loop.run(store.withdraw(db, user, order, 1))
    assert loop.run(store.list_withdrawals(db, user)) == []
    credit(db, loop, user, 5)
    loop.run(store.withdraw(db, user, order, 5))  # the number is still free
    assert loop.run(store.get_balance(db, user)) == store.Balance(0, 5)


def test_racing_withdrawals_never_overdraw(db, loop):
    user = make_user(db, loop)
    credit(db, loop, user, 1000)

    async def race():
        return await asyncio.gather(
            *(store.withdraw(db, user, new_number(), 300) for _ in range(20)),
            return_exceptions=True,
        )

    results = loop.run(race())
    wins = [r for r in results if isinstance(r, store.Balance)]
    assert len(wins) == 3
    assert all(isinstance(r, store.InsufficientFunds) for r in results if r not in wins)
    assert loop.run(store.get_balance(db, user)) == store.Balance(100, 900)
    assert len(loop.run(store.list_withdrawals(db, user))) == 3


def test_claims_are_exclusive_and_leased(db, loop):
    user = make_user(db, loop)
    numbers = {new_number() for _ in range(10)}
    for number in numbers:
        loop.run(store.upload_order(db, user, number))

    async def two_pollers():
        return await asyncio.gather(
            store.claim_orders(db, "a:1", 100, 30), store.claim_orders(db, "b:2", 100, 30)
        )

    first, second = ([n for n, _ in claimed] for claimed in loop.run(two_pollers()))
    assert not set(first) & set(second)
    assert numbers <= set(first) | set(second)
    assert loop.run(store.claim_orders(db, "c:3", 100, 30)) == []  # all leased
    released = loop.run(store.release_leases(db, "a:1"))
    assert released == len(first)
    assert {n for n, _ in loop.run(store.claim_orders(db, "a:1", 100, 30))} == set(first)
    loop.run(store.finish_orders(db, [Final(n, "INVALID", None) for n in numbers]))


def test_reschedule_sets_processing_and_delay(db, loop):
    user = make_user(db, loop)
    number = new_number()
    loop.run(store.upload_order(db, user, number))
    assert (number, 0) in loop.run(store.claim_orders(db, "a:1", 1000, 30))
    loop.run(store.reschedule_orders(db, "b:2", [Retry(number, 0, "PROCESSING")]))
    [order] = loop.run(store.list_orders(db, user))
    assert order.status == "NEW"  # not b:2's lease: untouched
    rescheduled = time.monotonic()
    loop.run(store.reschedule_orders(db, "a:1", [Retry(number, RETRY_S, "PROCESSING")]))
    assert not [n for n, _ in loop.run(store.claim_orders(db, "a:1", 1000, 30)) if n == number]
    [order] = loop.run(store.list_orders(db, user))
    assert order.status == "PROCESSING"
    wait_until(
        lambda: (number, 1) in loop.run(store.claim_orders(db, "a:1", 1000, 30)),
        10,
        "the order to be due again",
        interval_s=0.05,
    )
    assert time.monotonic() - rescheduled >= RETRY_S
    loop.run(store.finish_orders(db, [Final(number, "PROCESSED", 0)]))
    [order] = loop.run(store.list_orders(db, user))
    assert (order.status, order.accrual_kop) == ("PROCESSED", 0)
    assert loop.run(store.get_balance(db, user)).current_kop == 0


def test_shared_pause(db, loop):
    assert loop.run(store.accrual_pause_s(db)) == 0
    assert loop.run(store.poll_state(db))[2] == 0
    loop.run(store.pause_accrual(db, 2))
    loop.run(store.pause_accrual(db, 1))  # never shortens
    assert 1.5 < loop.run(store.accrual_pause_s(db)) <= 2
    pending, oldest, pause = loop.run(store.poll_state(db))
    assert pending >= 0 and oldest >= 0 and 1.5 < pause <= 2
    user = make_user(db, loop)
    number = new_number()
    loop.run(store.upload_order(db, user, number))
    assert loop.run(store.claim_orders(db, "p:1", 1000, 30)) == []  # paused

    async def unpause():
        async with db.acquire() as conn:
            await conn.execute("UPDATE gophermart.accrual_pause SET until = 'epoch'")

    loop.run(unpause())
    assert (number, 0) in loop.run(store.claim_orders(db, "p:1", 1000, 30))
