"""Launchers of grades' processes for tests and benchmarks: buses, replicas, clusters.

Built on actors.runtime.testing (free ports, deadlines, SIGTERM-then-SIGKILL).
A replica's HTTP helpers use ``requests`` (installed with the test extra).
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import psutil
import requests

from actors.runtime.testing import (START_TIMEOUT_S, HarnessError, Proc, ProcGroup, free_port,
                                    port_open, wait_until)

__all__ = ["AUTH", "Bus", "Replica", "Cluster"]

AUTH = ("test", "test")
"""The development credentials of the Procfile's .env."""


class Bus(Proc):
    """`grades bus` on two free ports, its log under ``data_dir``."""

    def __init__(self, data_dir: Path, log_dir: Path, name: str = "bus", **extra_env):
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.pub_url = f"tcp://127.0.0.1:{free_port()}"
        env = {**os.environ, "BUS_URL": self.url, "BUS_PUB_URL": self.pub_url,
               "GRADES_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
               **{k: str(v) for k, v in extra_env.items()}}
        super().__init__(name, [sys.executable, "-m", "actors.bus.server"], env, log_dir)

    def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.wait_output("bus listening", timeout_s)


class Replica(Proc):
    """One `grades replica` (supervisor, storage, broker, setter and getter servers)."""

    def __init__(self, replica_id: int, data_dir: Path, log_dir: Path, bus: Bus | None,
                 next_url: str = "", workers: int | None = None, **extra_env):
        self.replica_id = replica_id
        self.setter_port, self.getter_port = free_port(), free_port()
        self.set_base = f"http://127.0.0.1:{self.setter_port}"
        self.set_url = f"{self.set_base}/set"
        self.get_base = f"http://127.0.0.1:{self.getter_port}"
        self.storage_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.session = requests.Session()
        env = {
            **os.environ, "REPLICA_ID": str(replica_id), "GRADES_DATA_DIR": str(data_dir),
            "SETTER_PORT": str(self.setter_port), "GETTER_PORT": str(self.getter_port),
            "STORAGE_ENDPOINT": self.storage_endpoint,
            "BUS_URL": bus.url if bus else "none", "BUS_PUB_URL": bus.pub_url if bus else "",
            "NEXT_REPLICA_URL": next_url, "GRADES_USER": AUTH[0], "GRADES_PASSWORD": AUTH[1],
            "PYTHONUNBUFFERED": "1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        if workers is not None:
            env["SETTER_WORKERS"] = env["GETTER_WORKERS"] = str(workers)
        env.update({k: str(v) for k, v in extra_env.items()})
        super().__init__(f"replica{replica_id}", [sys.executable, "-m", "actors.grades.replica"],
                         env, log_dir)

    # --- lifecycle ---------------------------------------------------------

    def readyz(self) -> tuple[int, dict]:
        try:
            response = self.session.get(f"{self.get_base}/readyz", timeout=2)
            return response.status_code, response.json()
        except (requests.RequestException, ValueError):
            return 0, {}

    def ready(self) -> bool:
        return self.readyz()[0] == 200

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Seconds until /readyz answers 200 and the setter port accepts connections."""
        started = time.monotonic()
        deadline = started + timeout_s
        while not self.ready():
            if not self.running():
                raise self.fail("exited before it was ready")
            if time.monotonic() > deadline:
                raise self.fail(f"not ready after {timeout_s:.0f} s: {self.readyz()[1]}")
            time.sleep(0.05)
        while not port_open(self.setter_port):
            if time.monotonic() > deadline:
                raise self.fail("setter port does not accept connections")
            time.sleep(0.05)
        return time.monotonic() - started

    def wait_http_up(self, base: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until ``base`` answers HTTP at all (any status)."""
        def up():
            try:
                self.session.get(f"{base}/nothing", timeout=2)
                return True
            except requests.RequestException:
                return False
        wait_until(up, timeout_s, f"{base} to accept connections")

    def role(self, role: str) -> list[psutil.Process]:
        """Processes titled 'grades: <role> replica=N' (e.g. a gunicorn master and workers)."""
        return self.find(f"grades: {role} replica={self.replica_id}")

    def child(self, role: str) -> psutil.Process:
        """The supervisor's live child of a role: storage, broker, setter, getter."""
        for proc in self.role(role):
            try:
                if proc.ppid() == self.process.pid:
                    return proc
            except psutil.NoSuchProcess:
                continue
        raise self.fail(f"has no running {role} child")

    def workers(self, role: str) -> list[psutil.Process]:
        """The gunicorn worker processes of the setter or getter."""
        try:
            return self.child(role).children()
        except (HarnessError, psutil.NoSuchProcess):
            return []

    # --- HTTP --------------------------------------------------------------

    def set(self, user_id: str, session: requests.Session | None = None, **fields):
        return (session or self.session).post(
            self.set_url, json={"user_id": user_id, **fields}, auth=AUTH, timeout=10)

    def get(self, user_id: str, session: requests.Session | None = None):
        return (session or self.session).get(
            f"{self.get_base}/get", params={"user_id": user_id}, timeout=10)

    def record(self, user_id: str) -> dict | None:
        response = self.get(user_id)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()["result"]

    def backup_rows(self) -> dict[str, list[int]]:
        """The replica's whole map (values and versions), via /backup."""
        from actors.grades.backup import read_backup
        response = self.session.get(f"{self.get_base}/backup", timeout=60)
        assert response.status_code == 200, response.text
        _meta, batches = read_backup(io.BytesIO(response.content))
        return {key: row for batch in batches for key, row in batch}


class Cluster(ProcGroup):
    """Buses and replicas sharing one data directory; logs beside it."""

    def __init__(self, directory: Path, workers: int | None = 1):
        super().__init__(directory)
        self.data_dir = self.dir / "data"
        self.log_dir = self.dir / "logs"
        self.workers = workers

    def bus(self, start: bool = True, **env) -> Bus:
        bus = self.add(Bus(self.data_dir, self.log_dir, **env))
        if start:
            bus.start()
            bus.wait_listening()
        return bus

    def replica(self, replica_id: int, bus: Bus | None, next_url: str = "",
                start: bool = True, wait: bool = True, **env) -> Replica:
        replica = self.add(Replica(replica_id, self.data_dir, self.log_dir, bus, next_url,
                                   self.workers, **env))
        if start:
            replica.start()
            if wait:
                replica.wait_ready()
        return replica
