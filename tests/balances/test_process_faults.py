"""`balances` under faults, as real processes: two instances on one database, kill -9 of
worker actors mid-batch, of the whole service and of PostgreSQL under load, a stopped
worker restarted by its liveness probe. Afterwards
every accepted task is final exactly once: each user's tasks, replayed in acceptance
order from the opening balance, give exactly the recorded outcomes and balance."""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time

import psutil
import pytest
import requests

from actors.balances import store
from actors.balances.testing import Balances, launch, replay
from actors.runtime.pg.pool import LazyPool
from actors.runtime.testing import wait_until

LEASE_MS = 1500  # takeover in seconds, not the default's 5
DRAIN_TIMEOUT_S = 60
LOAD_REQUEST_DEADLINE_S = 60


def opening_users(db, loop, prefix: str, n: int, balance: int) -> dict[int, int]:
    users = [loop.run(store.create_user(db, f"{prefix}-{i}", balance)) for i in range(n)]
    return {u.id: balance for u in users}


def wait_drained(db, loop, timeout_s: float = DRAIN_TIMEOUT_S) -> None:
    wait_until(
        lambda: loop.run(store.queued_count(db)) == 0,
        timeout_s,
        "every queued task to be applied",
        interval_s=0.1,
    )


def check_replays(db, loop, openings: dict[int, int]) -> dict[int, list[store.Task]]:
    """Each user's tasks equal the in-order replay; returns them by user."""
    out = {}
    for user_id, opening in openings.items():
        tasks = loop.run(store.list_tasks(db, user_id, limit=1_000_000))
        expected = replay(opening, [(t.type, t.amount) for t in tasks])
        assert [(t.status, t.balance_after) for t in tasks] == expected.outcomes, user_id
        assert loop.run(store.get_user(db, user_id)).balance == expected.balance
        out[user_id] = tasks
    return out


async def workers_in_transaction(db) -> int:
    """Worker connections inside an apply transaction now (test-only SQL)."""
    async with db.acquire() as conn:
        return await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name LIKE 'balances worker-%' AND xact_start IS NOT NULL"
            # the apply step's statements, not a lease renewal's
            " AND (query LIKE '%plan_cache_mode%' OR query LIKE '%balances.tasks%')"
        )


def owners(db, loop) -> collections.Counter:
    return collections.Counter(loop.run(store.shard_endpoints(db)).values())


class Load:
    """Threads posting tasks to the users over HTTP until stopped. Each task has its own
    Idempotency-Key and is retried with it until a 202, so every key ends as exactly one
    accepted task whatever dies in between."""

    def __init__(self, bases: list[str], users: list[int], threads: int = 4):
        self.bases = bases
        self.users = users
        self.stop = threading.Event()
        self.accepted: dict[str, tuple[int, int]] = {}  # key -> (user_id, task_id)
        self.errors: list[str] = []
        self.threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)
        ]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=LOAD_REQUEST_DEADLINE_S + 5)

    def wait_for_accepted(self, count: int, what: str) -> None:
        """Let the load run until `count` more tasks are accepted (a condition, not a time)."""
        before = len(self.accepted)
        wait_until(
            lambda: len(self.accepted) >= before + count or self.errors,
            LOAD_REQUEST_DEADLINE_S,
            what,
        )
        assert not self.errors, self.errors[:5]

    def _run(self, index: int) -> None:
        rng = random.Random(index)
        http = requests.Session()
        n = 0
        while not self.stop.is_set():
            n += 1
            user = self.users[(index + n * len(self.threads)) % len(self.users)]
            key = f"load-{index}-{n}"
            body = {
                "type": "write-off" if rng.random() < 0.55 else "replenishment",
                "amount": rng.randint(1, 100),
            }
            if not self._post(http, rng, user, key, body):
                return

    def _post(self, http, rng, user: int, key: str, body: dict) -> bool:
        deadline = time.monotonic() + LOAD_REQUEST_DEADLINE_S
        while time.monotonic() < deadline:
            base = rng.choice(self.bases)
            try:
                response = http.post(
                    f"{base}/api/v1/user/{user}/amount/",
                    json=body,
                    headers={"Idempotency-Key": key},
                    timeout=5,
                )
            except requests.RequestException:
                time.sleep(0.05)
                continue
            if response.status_code == 202:
                self.accepted[key] = (user, int(response.json()["task_id"]))
                return True
            if response.status_code != 503:
                self.errors.append(f"{key}: {response.status_code} {response.text}")
                return False
            time.sleep(0.05)
        self.errors.append(f"{key}: no 202 within {LOAD_REQUEST_DEADLINE_S} s")
        return False

    def check_accepted(self, by_user: dict[int, list[store.Task]]) -> None:
        """Every acknowledged task is there, and no key made a second task."""
        assert not self.errors, self.errors[:5]
        acked = collections.defaultdict(set)
        for user, task_id in self.accepted.values():
            acked[user].add(task_id)
        for user in self.users:
            assert {t.id for t in by_user[user]} == acked[user], user


@pytest.fixture
def fresh(pg_server, loop):
    """(dsn, pool) of a new database, not migrated: the instances do it, at once."""
    dsn = pg_server.create_database("t_balances_two_instances")
    pool = LazyPool(dsn, max_size=4)
    yield dsn, pool
    loop.run(pool.close())


def test_two_instances_split_the_shards_and_keep_each_user_in_order(procs, fresh, loop):
    dsn, db = fresh
    a, b = (
        procs.add(Balances(dsn, procs.dir, name=name, workers=2, BALANCES_LEASE_MS=LEASE_MS))
        for name in ("balances-a", "balances-b")
    )
    a.start()
    b.start()  # both migrate the empty database at once
    a.wait_ready()
    b.wait_ready()
    wait_until(
        lambda: sorted(owners(db, loop).values()) == [16, 16, 16, 16],
        20,
        "four workers of two instances to hold 16 shards each",
    )
    openings = opening_users(db, loop, "two", 8, 200)
    with Load([a.base, b.base], list(openings), threads=4) as load:
        load.wait_for_accepted(200, "both instances to accept tasks")
    wait_drained(db, loop)
    load.check_accepted(check_replays(db, loop, openings))
    assert len(load.accepted) > 50
    assert procs.stop(b) is None  # a clean stop releases b's shards to a at once
    wait_until(
        lambda: sorted(owners(db, loop).values()) == [32, 32],
        10,
        "the instance left to hold every shard",
    )
    user = next(iter(openings))
    assert a.post_task(str(user), "replenishment", 1).status_code == 202
    wait_drained(db, loop, timeout_s=5)
    check_replays(db, loop, openings)
    procs.stop(a)


def _kill_workers_mid_batch(service: Balances, db: LazyPool, loop, tasks: list) -> bool:
    """Queue ``tasks``, SIGKILL every worker actor once one is inside an apply transaction;
    True when work was left at the kill (False: they drained it all first)."""
    # NOTE: the actors start once HTTP answers, so right after launch they may not all run.
    wait_until(lambda: len(service.worker_pids()) == 2, 20, "both worker actors running")
    loop.run(store.enqueue_many(db, tasks))
    wait_until(
        lambda: loop.run(workers_in_transaction(db)),
        20,
        "a worker to be inside an apply transaction",
        interval_s=0.002,
    )
    victims = [psutil.Process(pid) for pid in service.worker_pids()]
    assert len(victims) == 2
    for victim in victims:
        victim.kill()
    psutil.wait_procs(victims, timeout=5)
    return loop.run(store.queued_count(db)) > 0


def test_kill9_of_worker_actors_mid_batch(procs, pg_dsn, db, loop):
    service = launch(procs, pg_dsn, name="balances-k", workers=2, BALANCES_LEASE_MS=LEASE_MS)
    openings = opening_users(db, loop, "kill", 200, 1000)
    rng = random.Random(3)
    users = list(openings)
    queued = 0
    for _ in range(2):  # two rounds: a backlog, a kill -9 of every worker while it drains
        # NOTE: 20,000 tasks drain in ~0.25 s on a quiet machine: a round whose backlog
        # was gone before the kill is tried again with another (at most 5 times).
        for _attempt in range(5):
            backlog = [
                (rng.choice(users), rng.choice(store.TASK_TYPES), rng.randint(1, 300))
                for _ in range(20_000)
            ]
            queued += len(backlog)
            if _kill_workers_mid_batch(service, db, loop, backlog):
                break
        else:
            pytest.fail("the workers drained every backlog before they were killed")
    wait_drained(db, loop)
    by_user = check_replays(db, loop, openings)
    assert sum(len(tasks) for tasks in by_user.values()) == queued
    assert "worker-0 (pid" in service.output() and "killed by SIGKILL" in service.output()
    procs.stop(service)


def test_kill9_of_the_whole_service_and_of_postgres_under_load(procs, pg_server, pg_dsn, db, loop):
    first = launch(procs, pg_dsn, name="balances-w1", workers=2, BALANCES_LEASE_MS=LEASE_MS)
    openings = opening_users(db, loop, "whole", 10, 500)
    with Load([first.base], list(openings), threads=4) as load:
        load.wait_for_accepted(50, "tasks accepted before the kill")
        first.kill9()  # supervisor, workers, gunicorn: all at once
        second = launch(
            procs,
            pg_dsn,
            name="balances-w2",
            port=first.port,
            workers=2,
            BALANCES_LEASE_MS=LEASE_MS,
        )
        load.wait_for_accepted(50, "the second instance to accept tasks")
        pg_server.kill9()  # and the database under them
        pg_server.start()
        load.wait_for_accepted(50, "tasks accepted again after PostgreSQL's restart")
    loop.run(db.close())  # its connections died with the server; it reopens on use
    wait_drained(db, loop)
    load.check_accepted(check_replays(db, loop, openings))
    assert len(load.accepted) > 50
    procs.stop(second)


def test_a_stopped_worker_is_restarted_by_its_liveness_probe_and_applies_again(procs, pg_dsn):
    service = launch(procs, pg_dsn, name="balances-h", workers=1)
    user = service.create_user("hung-worker", 0)
    stopped = service.hang_child("worker-0", "balances: worker 0")
    accepted = service.post_task(user["id"], "replenishment", 7)
    assert accepted.status_code == 202, accepted.text  # queued: its worker is not turning
    service.wait_hung_child_replaced("worker-0", "balances: worker 0", stopped)
    (task,) = service.wait_final(user["id"], timeout_s=DRAIN_TIMEOUT_S)
    assert task["status"] == "done" and service.balance(user["id"]) == 7
    procs.stop(service)


def test_workers_stop_when_their_supervisor_is_killed(procs, pg_dsn):
    service = launch(procs, pg_dsn, name="balances-s", workers=2)

    # ready means the shards are held, not that every worker has set its title yet
    def both_workers() -> list[int] | None:
        pids = service.worker_pids()
        return pids if len(pids) == 2 else None

    pids = wait_until(both_workers, 10, "both worker actors to show their titles")
    workers = [psutil.Process(pid) for pid in pids]
    os.kill(service.process.pid, signal.SIGKILL)
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert not alive, "orphaned worker actors kept running"
    procs.stop(service)
