"""gophermart and accrual as real processes (the console commands) on a real PostgreSQL:
the course's black-box flow, two instances racing withdrawals, 429 honoured by the whole
instance, a stopped poller restarted by its liveness probe, kill -9 with orders in flight
then restart (each accrual credited once), and the command's one-line configuration
errors."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from actors.accrual.testing import Accrual
from actors.gophermart.testing import Gophermart, new_login, new_number
from actors.runtime.testing import ROOT, wait_until
from tests.gophermart.fake_accrual import FakeAccrual, processed, too_many

WAIT_S = 20.0


@pytest.fixture(scope="module")
def accrual(procs, pg_dsn):
    service = procs.add(Accrual(pg_dsn, procs.dir, ACCRUAL_DELAY_MS=300))
    service.start()
    service.wait_ready()
    return service


@pytest.fixture(scope="module")
def two(procs, pg_dsn, accrual):
    """Two gophermart instances on one database, each with its own port and poller."""
    instances = [
        procs.add(Gophermart(pg_dsn, accrual.base, procs.dir, name=f"gophermart{i}", workers=2))
        for i in (1, 2)
    ]
    for instance in instances:
        instance.start()
    for instance in instances:
        instance.wait_ready()
    return instances


@pytest.fixture(scope="module")
def fake():
    script = {"reply": lambda number, index: processed(number, "1")}
    with FakeAccrual(lambda number, index: script["reply"](number, index), delay_s=0.05) as server:
        server.script_box = script
        yield server


@pytest.fixture(scope="module")
def faked(procs, pg_server, fake):
    """An instance whose accrual system is the scripted fake, on a database of its own."""
    dsn = pg_server.create_database(f"t_gm_fake_{uuid.uuid4().hex[:8]}")
    # NOTE: a 10 s idle poll: an order answered within a second was asked on a nudge.
    instance = procs.add(
        Gophermart(
            dsn,
            fake.url,
            procs.dir,
            name="gophermart-fake",
            GOPHERMART_LEASE_S=2,
            GOPHERMART_POLL_INFLIGHT=4,
            GOPHERMART_IDLE_MS=10000,
        )
    )
    instance.start()
    instance.wait_ready()
    return instance


def orders_of(instance: Gophermart) -> list[dict]:
    response = instance.get("/api/user/orders")
    assert response.status_code in (200, 204), response.text
    return response.json() if response.status_code == 200 else []


def wait_all_final(instance: Gophermart, count: int) -> list[dict]:
    return wait_until(
        lambda: (
            lambda orders: (
                orders
                if len(orders) == count
                and all(o["status"] in ("PROCESSED", "INVALID") for o in orders)
                else None
            )
        )(orders_of(instance)),
        WAIT_S,
        f"{count} orders final",
    )


def test_each_instance_says_it_is_ready_once_http_answers(two):
    for instance in two:
        assert len(instance.wait_ready_line("gophermart")) == 1


def test_course_flow(accrual, two):
    gophermart = two[0]
    brand = f"Bork-{uuid.uuid4().hex[:8]}"
    assert (
        accrual.post("/api/goods", {"match": brand, "reward": 5, "reward_type": "%"}).status_code
        == 200
    )
    number = new_number()
    assert (
        accrual.post(
            "/api/orders",
            {
                "order": number,
                "goods": [
                    {"description": "Стиральная машинка LG", "price": 47399.99},
                    {"description": f"Телевизор {brand}", "price": 14599.50},
                ],
            },
        ).status_code
        == 202
    )
    anonymous = requests.post(gophermart.url("/api/user/orders"), data=number, timeout=5)
    assert anonymous.status_code == 401
    gophermart.register(new_login(), "pass-word-1")
    del gophermart.session.headers["Authorization"]  # from now on the cookie alone
    assert gophermart.upload(number).status_code == 202
    [order] = wait_all_final(gophermart, 1)
    assert (order["number"], order["status"], order["accrual"]) == (number, "PROCESSED", 729.98)
    assert gophermart.get("/api/user/balance").json() == {"current": 729.98, "withdrawn": 0}
    spend = new_number()
    done = gophermart.post("/api/user/balance/withdraw", {"order": spend, "sum": 700.5})
    assert done.status_code == 200, done.text
    assert gophermart.get("/api/user/balance").json() == {"current": 29.48, "withdrawn": 700.5}
    [withdrawal] = gophermart.get("/api/user/withdrawals").json()
    assert (withdrawal["order"], withdrawal["sum"]) == (spend, 700.5)
    metrics = gophermart.get("/metrics").text
    assert "gophermart_http_requests_total" in metrics
    assert "gophermart_orders_pending 0.0" in metrics
    assert "accrual_http_requests_total" in accrual.get("/metrics").text


def test_racing_withdrawals_on_two_instances_never_overdraw(accrual, two):
    brand = f"Points-{uuid.uuid4().hex[:8]}"
    accrual.post("/api/goods", {"match": brand, "reward": 1000, "reward_type": "pt"})
    number = new_number()
    accrual.post("/api/orders", {"order": number, "goods": [{"description": brand, "price": 1}]})
    token = two[0].register(new_login(), "pass-word-2")
    two[0].upload(number)
    wait_all_final(two[0], 1)
    orders = [new_number() for _ in range(20)]
    orders[1] = orders[0]  # one number withdrawn twice at once: one 200 at most, then 409
    barrier = threading.Barrier(20)

    def withdraw(i: int) -> int:
        barrier.wait(timeout=10)
        response = requests.post(
            two[i % 2].url("/api/user/balance/withdraw"),
            timeout=10,
            json={"order": orders[i], "sum": 100},
            headers={"Authorization": token},
        )
        return response.status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(withdraw, range(20)))
    assert statuses.count(200) == 10 and set(statuses) <= {200, 402, 409}, statuses
    assert statuses[:2].count(409) <= 1 and 409 not in statuses[2:]
    for instance in two:
        assert requests.get(
            instance.url("/api/user/balance"), timeout=5, headers={"Authorization": token}
        ).json() == {"current": 0, "withdrawn": 1000}
    listed = requests.get(
        two[1].url("/api/user/withdrawals"), timeout=5, headers={"Authorization": token}
    ).json()
    assert len(listed) == 10 and sum(w["sum"] for w in listed) == 1000


def test_an_upload_wakes_the_poller(fake, faked):
    fake.script_box["reply"] = lambda number, index: processed(number, "0.5")
    faked.register(new_login(), "pass-word-5")
    # after the first, each upload finds the poller in its idle wait (the last order is done)
    for _ in range(3):
        number = new_number()
        started = time.monotonic()
        assert faked.upload(number).status_code == 202
        wait_until(
            lambda: orders_of(faked)[-1]["status"] == "PROCESSED",
            1.0,
            "PROCESSED within a second of the upload",
        )
        assert time.monotonic() - started < 1.0
    assert faked.get("/api/user/balance").json()["current"] == 1.5


def test_a_stopped_poller_is_restarted_by_its_liveness_probe_and_credits_again(fake, faked):
    fake.script_box["reply"] = lambda number, index: processed(number, "2")
    faked.register(new_login(), "pass-word-6")
    stopped = faked.hang_child("poller", "gophermart: poller")
    number = new_number()
    assert faked.upload(number).status_code == 202  # queued: no poller is turning
    faked.wait_hung_child_replaced("poller", "gophermart: poller", stopped)
    wait_until(
        lambda: [o["status"] for o in orders_of(faked)] == ["PROCESSED"],
        WAIT_S,
        "the new poller to credit the order uploaded while the old one was stopped",
    )
    assert faked.get("/api/user/balance").json()["current"] == 2


def test_429_pauses_the_instance(fake, faked):
    said = []

    def reply(number, index):
        if not said:
            said.append(time.monotonic())
            return too_many(2)
        return processed(number, "1")

    fake.script_box["reply"] = reply
    faked.register(new_login(), "pass-word-3")
    start = fake.count()
    first = new_number()
    faked.upload(first)
    wait_until(lambda: said, WAIT_S, "the 429")
    for _ in range(3):  # uploads (and nudges) during the pause
        faked.upload(new_number())
    wait_all_final(faked, 4)
    after = [t - said[0] for t in fake.times()[start + 1 :]]
    assert after and min(after) >= 2.0 - 0.05, after
    assert faked.get("/api/user/balance").json()["current"] == 4


def test_kill9_with_orders_in_flight_credits_each_once(fake, faked):
    fake.script_box["reply"] = lambda number, index: processed(number, "1.01")
    fake.delay_s = 0.2
    faked.register(new_login(), "pass-word-4")
    numbers = [new_number() for _ in range(24)]
    for number in numbers:
        assert faked.upload(number).status_code == 202
    wait_until(
        lambda: any(o["status"] == "PROCESSED" for o in orders_of(faked)), WAIT_S, "a first credit"
    )
    asked_before = {n for _, n in fake.requests}
    faked.kill9()
    in_flight_at_kill = len([n for n in numbers if n in asked_before])
    faked.start()
    faked.wait_ready()
    fake.delay_s = 0.0
    final = wait_all_final(faked, len(numbers))
    assert all(o["status"] == "PROCESSED" and o["accrual"] == 1.01 for o in final)
    assert faked.get("/api/user/balance").json() == {"current": 24.24, "withdrawn": 0}
    assert 0 < in_flight_at_kill <= len(numbers)


def run_command(args: list[str], env: dict, timeout_s: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "actors.gophermart.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


@pytest.mark.parametrize(
    "env, code, names",
    [
        (
            {
                "RUN_ADDRESS": "nonsense",
                "DATABASE_URI": "postgresql://x@127.0.0.1:1/x",
                "ACCRUAL_SYSTEM_ADDRESS": "http://127.0.0.1:1",
            },
            2,
            "RUN_ADDRESS",
        ),
        (
            {"DATABASE_URI": "mysql://x", "ACCRUAL_SYSTEM_ADDRESS": "http://127.0.0.1:1"},
            2,
            "DATABASE_URI",
        ),
        ({"DATABASE_URI": "postgresql://x@127.0.0.1:1/x"}, 2, "ACCRUAL_SYSTEM_ADDRESS"),
        (
            {
                "DATABASE_URI": "postgresql://x@127.0.0.1:1/x",
                "ACCRUAL_SYSTEM_ADDRESS": "ftp://x",
                "GOPHERMART_DB_WAIT_S": "1",
            },
            2,
            "ACCRUAL_SYSTEM_ADDRESS",
        ),
        (
            {
                "DATABASE_URI": "postgresql://x@127.0.0.1:1/x",
                "ACCRUAL_SYSTEM_ADDRESS": "127.0.0.1:1",
                "GOPHERMART_DB_WAIT_S": "1",
            },
            1,
            "DATABASE_URI",
        ),
    ],
)
def test_configuration_errors_are_one_line(env, code, names):
    result = run_command([], {"PATH": "/usr/bin:/bin", **env})
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and names in lines[0], result.stderr


def test_environment_wins_over_flags(tmp_path):
    result = run_command(
        ["-a", "127.0.0.1:1", "-d", "postgresql://x@127.0.0.1:1/x"],
        {
            "RUN_ADDRESS": "bad address",
            "PATH": "/usr/bin:/bin",
            "ACCRUAL_SYSTEM_ADDRESS": "http://127.0.0.1:1",
        },
    )
    assert result.returncode == 2 and "RUN_ADDRESS" in result.stderr
