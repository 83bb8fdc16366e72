"""Launchers and checks of balances for tests and benchmarks.

Built on actors.runtime.testing (free ports, deadlines, SIGTERM-then-SIGKILL).
`Balances` runs the `balances` console command as a real process tree against a
DSN; `replay` is what applying tasks strictly in order must give, the yardstick of
every ordering and exactly-once check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import asyncpg
import requests

from actors.balances.store import MAX_MONEY, SCHEMA_DIR, SHARDS, WRITE_OFF
from actors.runtime.hosts import private_tree_argv
from actors.runtime.testing import HttpService, ProcGroup, wait_until

__all__ = [
    "SCHEMA_DIR",
    "Balances",
    "Replayed",
    "check_user",
    "launch",
    "launch_private",
    "replay",
    "shards_held",
    "shards_of",
    "users_in_shards",
    "wakeup_latencies",
]

FINAL_TIMEOUT_S = 60.0


class Replayed(NamedTuple):
    balance: int
    """The balance after every task, applied in order."""
    outcomes: list[tuple[str, int | None]]
    """Per task: ("done", balance_after) or ("cancelled", None)."""


def replay(balance: int, tasks: list[tuple[str, int]]) -> Replayed:
    """What applying (type, amount) tasks strictly in order must give."""
    outcomes: list[tuple[str, int | None]] = []
    for type_, amount in tasks:
        new = balance - amount if type_ == WRITE_OFF else balance + amount
        if 0 <= new <= MAX_MONEY:
            balance = new
            outcomes.append(("done", new))
        else:
            outcomes.append(("cancelled", None))
    return Replayed(balance, outcomes)


class Balances(HttpService):
    """One `balances` instance (supervisor, worker actors, gunicorn) on a free port."""

    def __init__(
        self,
        dsn: str,
        log_dir: Path,
        *,
        port: int | None = None,
        workers: int = 2,
        http_workers: int = 1,
        name: str = "balances",
        host: str = "127.0.0.1",
        **extra_env: object,
    ):
        env = {
            **os.environ,
            "DATABASE_URI": dsn,
            "BALANCES_DATA_DIR": str(Path(log_dir) / "data"),
            "BALANCES_WORKERS": str(workers),
            "BALANCES_HTTP_WORKERS": str(http_workers),
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in extra_env.items()},
        }
        argv = [sys.executable, "-m", "actors.balances.cli"]
        super().__init__(name, argv, env, log_dir, port, host)

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.find("balances: worker")]

    # --- the API ---------------------------------------------------------------------

    def create_user(self, username: str, balance: int) -> dict[str, Any]:
        response = self.session.post(
            self.url("/api/v1/user/"), json={"username": username, "balance": balance}, timeout=10
        )
        assert response.status_code == 201, response.text
        user: dict[str, Any] = response.json()
        return user

    def post_task(
        self, user_id: str, type_: str, amount: int, key: str | None = None, timeout_s: float = 10
    ) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        return self.session.post(
            self.url(f"/api/v1/user/{user_id}/amount/"),
            json={"type": type_, "amount": amount},
            headers=headers,
            timeout=timeout_s,
        )

    def tasks(self, user_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while True:
            response = self.session.get(
                self.url(f"/api/v1/user/{user_id}/tasks/"),
                params={"after": out[-1]["task_id"] if out else 0, "limit": 1000},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            page: list[dict[str, Any]] = response.json()
            out += page
            if len(page) < 1000:
                return out

    def balance(self, user_id: str) -> int:
        response = self.session.get(self.url(f"/api/v1/user/{user_id}"), timeout=10)
        assert response.status_code == 200, response.text
        balance: int = response.json()["balance"]
        return balance

    def wait_final(self, user_id: str, timeout_s: float = FINAL_TIMEOUT_S) -> list[dict[str, Any]]:
        """The user's tasks once none is queued."""

        def final() -> list[dict[str, Any]] | None:
            tasks = self.tasks(user_id)
            return tasks if all(t["status"] != "queued" for t in tasks) else None

        return wait_until(final, timeout_s, f"user {user_id}'s tasks to be applied", interval_s=0.1)


def launch(group: ProcGroup, dsn: str, name: str = "balances", **options: Any) -> Balances:
    """Start an instance in the group's directory and wait until it answers /readyz."""
    service = group.add(Balances(dsn, group.dir, name=name, **options))
    service.start()
    service.wait_ready()
    return service


def launch_private(group: ProcGroup, dsn: str, name: str, **options: Any) -> Balances:
    """`launch`, as on a host of its own: in a mount namespace where the directory holding
    every such instance's run dir (`group.dir/hosts`) is a private tmpfs, so no other
    instance can reach its ipc sockets (needs root; see actors.runtime.hosts)."""
    root = group.dir / "hosts"
    root.mkdir(exist_ok=True)
    own = root / name
    service = group.add(Balances(dsn, group.dir, name=name, BALANCES_DATA_DIR=own, **options))
    service.argv = private_tree_argv(service.argv, root, own)
    service.start()
    service.wait_ready()
    return service


def check_user(service: Balances, user_id: str, opening: int) -> list[dict[str, Any]]:
    """Every task of the user final, each outcome and the balance equal to the replay
    of the user's tasks in acceptance order (a task applied twice, skipped or out of
    order would show). Returns the tasks."""
    tasks = service.wait_final(user_id)
    expected = replay(opening, [(t["type"], t["amount"]) for t in tasks])
    got = [(t["status"], t.get("balance_after")) for t in tasks]
    assert got == expected.outcomes, f"user {user_id}: outcomes differ from the replay"
    assert all(("reason" in t) == (t["status"] == "cancelled") for t in tasks)
    assert service.balance(user_id) == expected.balance
    return tasks


# --- wake-ups across instances ---------------------------------------------------------


def shards_of(dsn: str, service: Balances, count: int) -> set[int] | None:
    """The shards `service`'s workers hold, once they hold `count` and all 64 are held."""
    held = shards_held(dsn)
    marker = f":{service.port}/"
    mine = {s for s, owner in held.items() if marker in owner}
    return mine if len(held) == SHARDS and len(mine) == count else None


def shards_held(dsn: str) -> dict[int, str]:
    """shard -> owner (``host:port/worker-i``) of every unexpired lease."""

    async def read() -> dict[int, str]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT shard, owner FROM balances.shard_leases WHERE lease_until > now()"
            )
        finally:
            await conn.close()
        return {r["shard"]: r["owner"] for r in rows}

    return asyncio.run(read())


def users_in_shards(service: Balances, shards: set[int], count: int, prefix: str) -> list[str]:
    """Create users until `count` of them fall in `shards`; their ids."""
    users: list[str] = []
    for i in range(count * SHARDS):
        user = service.create_user(f"{prefix}-{i}", 0)
        if int(user["id"]) % SHARDS in shards:
            users.append(user["id"])
            if len(users) == count:
                return users
    raise AssertionError(f"no {count} users fell in shards {sorted(shards)}")


def wakeup_latencies(
    accepting: Balances, users: list[str], tasks: int, timeout_s: float = 5.0
) -> list[float]:
    """Queue `tasks` replenishments of 1, one at a time, round robin over `users`, on
    `accepting`; wait for each to be applied. Returns, per task, seconds from its
    acceptance (created_at) to the start of the transaction that applied it
    (applied_at), both the database's clock."""
    latencies: list[float] = []
    for i in range(tasks):
        accepted = accepting.post_task(users[i % len(users)], "replenishment", 1)
        assert accepted.status_code == 202, accepted.text
        task = accepted.json()

        def applied(task_id: int = task["task_id"]) -> dict[str, Any] | None:
            got = accepting.get(f"/api/v1/task/{task_id}")
            assert got.status_code == 200, got.text
            body: dict[str, Any] = got.json()
            return body if body["status"] != "queued" else None

        done = wait_until(applied, timeout_s, f"task {task['task_id']}", interval_s=0.002)
        waited = dt.datetime.fromisoformat(done["applied_at"]) - dt.datetime.fromisoformat(
            task["created_at"]
        )
        latencies.append(waited.total_seconds())
    return latencies
