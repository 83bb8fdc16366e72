"""`balances` as real processes: ordering, fairness, the command line, fuzzing."""

from __future__ import annotations

import collections
import datetime as dt
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from actors.balances import store
from actors.balances.nudger import REFRESH_S as NUDGER_REFRESH_S
from actors.balances.testing import check_user, launch
from actors.runtime.testing import free_port, wait_until
from tests.openapi_fuzz import fuzz_document
from web.balances.validation import MAX_USERNAME_BYTES

RUN_TIMEOUT_S = 20
TOO_LONG = {"error": f"username: longer than {MAX_USERNAME_BYTES} bytes"}


@pytest.fixture(scope="module")
def service(procs, pg_dsn, db, loop):
    """An instance whose workers poll only once a minute: every task applied within the
    tests' deadlines got there by a nudge."""
    service = launch(procs, pg_dsn, workers=2, http_workers=2, BALANCES_POLL_MS=60_000)
    wait_until(
        lambda: (
            sorted(collections.Counter(loop.run(store.shard_endpoints(db)).values()).values())
            == [32, 32]
        ),
        20,
        "the two workers to split the shards",
    )
    time.sleep(NUDGER_REFRESH_S + 0.2)  # the HTTP workers' view of the owners is current
    return service


def test_says_it_is_ready_once_http_answers(service):
    assert len(service.wait_ready_line("balances")) == 1


def test_200_sequential_mixed_tasks_end_as_the_in_order_replay(service):
    user = service.create_user("sequential", 300)
    rng = random.Random(7)
    for _ in range(200):
        type_ = "write-off" if rng.random() < 0.6 else "replenishment"
        response = service.post_task(user["id"], type_, rng.randint(1, 200))
        assert response.status_code == 202, response.text
    tasks = check_user(service, user["id"], 300)
    assert len(tasks) == 200
    assert 0 < sum(t["status"] == "cancelled" for t in tasks) < 200


def test_a_task_is_applied_within_a_second_by_its_nudge(service):
    user = service.create_user("prompt", 0)
    accepted = service.post_task(user["id"], "replenishment", 5).json()
    task = service.wait_final(user["id"], timeout_s=5)[0]
    waited = dt.datetime.fromisoformat(task["applied_at"]) - dt.datetime.fromisoformat(
        accepted["created_at"]
    )
    assert waited < dt.timedelta(seconds=1)


def test_1000_queued_tasks_do_not_hold_up_another_user(service, db, loop):
    heavy = service.create_user("heavy", 0)
    light = None
    for i in range(store.SHARDS):  # a user in the same shard, so the same worker
        candidate = service.create_user(f"light-{i}", 0)
        if store.shard_of(int(candidate["id"])) == store.shard_of(int(heavy["id"])):
            light = candidate
            break
    assert light is not None
    loop.run(store.enqueue_many(db, [(int(heavy["id"]), "replenishment", 1)] * 1000))
    assert service.post_task(light["id"], "replenishment", 1).status_code == 202
    light_task = service.wait_final(light["id"], timeout_s=10)[0]
    heavy_tasks = service.wait_final(heavy["id"])
    assert len(heavy_tasks) == 1000 and service.balance(heavy["id"]) == 1000
    assert light_task["applied_at"] < max(t["applied_at"] for t in heavy_tasks)


def test_two_requests_with_one_key_queue_one_task(service):
    user = service.create_user("idempotent", 10)
    first = service.post_task(user["id"], "write-off", 4, key="order-77")
    again = service.post_task(user["id"], "write-off", 4, key="order-77")
    assert first.status_code == again.status_code == 202
    assert first.json()["task_id"] == again.json()["task_id"]
    tasks = check_user(service, user["id"], 10)
    assert len(tasks) == 1 and service.balance(user["id"]) == 6


def test_concurrent_posts_are_each_applied_once_in_acceptance_order(service):
    """Many POSTs at once (so the HTTP workers' batches hold several): every 202 is one
    task, applied once, in acceptance order; a sender's tasks are accepted in the order
    it sent them."""
    users = [service.create_user(f"burst-{i}", 500) for i in range(8)]
    senders, per_sender = 24, 20

    def send(sender: int) -> tuple[str, list[int]]:
        rng = random.Random(sender)
        user = users[sender % len(users)]["id"]
        ids = []
        with requests.Session() as session:
            for _ in range(per_sender):
                type_ = rng.choice(["replenishment", "write-off"])
                response = session.post(
                    service.url(f"/api/v1/user/{user}/amount/"),
                    json={"type": type_, "amount": rng.randint(1, 300)},
                    timeout=10,
                )
                assert response.status_code == 202, response.text
                ids.append(int(response.json()["task_id"]))
        return user, ids

    with ThreadPoolExecutor(senders) as pool:
        sent = list(pool.map(send, range(senders)))
    # The workers poll once a minute: the last batches' nudges (held for the nudge gap)
    # must arrive on their own.
    wait_until(
        lambda: all(all(t["status"] != "queued" for t in service.tasks(u["id"])) for u in users),
        5,
        "the burst's tasks to be applied by their nudges",
        interval_s=0.1,
    )
    accepted: dict[str, set[int]] = collections.defaultdict(set)
    for user, ids in sent:
        assert ids == sorted(ids)  # answered one after another: accepted in that order
        accepted[user] |= set(ids)
    for user in users:
        tasks = check_user(service, user["id"], 500)
        assert {int(t["task_id"]) for t in tasks} == accepted[user["id"]]


def test_one_key_posted_at_once_is_one_task_and_every_answer_agrees(service):
    user = service.create_user("same-key-burst", 100)
    bodies = [("write-off", 4)] * 10 + [("write-off", 5)] * 2
    start = threading.Barrier(len(bodies))

    def send(body: tuple[str, int]) -> requests.Response:
        start.wait(timeout=10)
        return requests.post(
            service.url(f"/api/v1/user/{user['id']}/amount/"),
            json={"type": body[0], "amount": body[1]},
            headers={"Idempotency-Key": "burst"},
            timeout=10,
        )

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, bodies))
    (task,) = check_user(service, user["id"], 100)
    first = (task["type"], task["amount"])
    for body, answer in zip(bodies, answers, strict=True):
        if body == first:
            assert answer.status_code == 202 and answer.json()["task_id"] == task["task_id"]
        else:
            assert answer.status_code == 409, answer.text
    fresh = [a for a in answers if a.status_code == 202 and "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1


def test_an_oversized_body_is_413(service):
    user = service.create_user("big-body", 0)
    response = requests.post(
        service.url(f"/api/v1/user/{user['id']}/amount/"),
        data=b"{" + b" " * 20_000 + b"}",
        timeout=10,
    )
    assert response.status_code == 413 and "body" in response.json()["error"]
    assert service.tasks(user["id"]) == []


def test_the_api_conforms_to_its_document(service):
    """schemathesis, positive and negative cases of every operation: no 500, and statuses,
    bodies and headers as documented. (Driven by hand: its pytest plugin's from_fixture
    does not run under pytest 9.)"""
    fuzz_document(
        service.base,
        7,  # with GET /docs (schemathesis leaves out the document's own GET /openapi.json)
        additional_checks=[not_a_server_error, response_schema_conformance],
        # maxLength counts characters, the service UTF-8 bytes
        skip=lambda response: response.status_code == 400 and response.json() == TOO_LONG,
        negative_may_be_empty=False,
    )


def run_cli(env_extra: dict, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "PYTHONUNBUFFERED": "1", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "actors.balances.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def test_a_malformed_address_exits_2_naming_the_variable(pg_dsn):
    done = run_cli({"RUN_ADDRESS": "nonsense", "DATABASE_URI": pg_dsn}, "-a", "127.0.0.1:1")
    assert done.returncode == 2 and "RUN_ADDRESS" in done.stderr
    done = run_cli({"DATABASE_URI": pg_dsn}, "-a", "no-port")
    assert done.returncode == 2 and "-a" in done.stderr


def test_an_unreachable_database_exits_1_naming_the_variable():
    port = free_port()
    done = run_cli(
        {
            "DATABASE_URI": f"postgresql://postgres@127.0.0.1:{port}/x",
            "BALANCES_DB_WAIT_S": "1",
            "RUN_ADDRESS": f"127.0.0.1:{free_port()}",
        }
    )
    assert done.returncode == 1 and "DATABASE_URI" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    done = run_cli(
        {"BALANCES_DB_WAIT_S": "0", "RUN_ADDRESS": f"127.0.0.1:{free_port()}"},
        "-d",
        f"postgresql://postgres@127.0.0.1:{port}/x",
    )
    assert done.returncode == 1 and done.stderr.startswith("balances: -d: "), done.stderr
