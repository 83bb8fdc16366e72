"""Launchers of grades' processes for tests and benchmarks: buses, replicas, clusters.

Built on actors.runtime.testing (free ports, deadlines, SIGTERM-then-SIGKILL).
A replica's HTTP helpers use ``requests`` (installed with the test extra). The NATS
JetStream nodes a cluster may run on are launched by actors.grades.jetstream.testing
(``NatsNode``, ``NatsCluster``, re-exported here).
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from actors.grades.jetstream.testing import NatsCluster, NatsNode
from actors.runtime.endpoints import ipc_endpoint
from actors.runtime.testing import (
    ROOT,
    START_TIMEOUT_S,
    HarnessError,
    Proc,
    ProcGroup,
    free_port,
    port_open,
    wait_until,
)

__all__ = [
    "AUTH",
    "BACKENDS",
    "run_cli",
    "Bus",
    "Replica",
    "Cluster",
    "NatsNode",
    "NatsCluster",
    "seconds_until_sets_accepted",
]

BACKENDS = ("builtin", "jetstream")
"""Cluster.backend values: the grades bus, or a 3-node NATS JetStream cluster."""
SET_PROBE_TIMEOUT_S = 1.0
"""One probe set of a starting replica: a port bound but not yet served holds it."""
SET_PROBE_EVERY_S = 0.02
START_ATTEMPTS = 3
"""Tries of a start that lost a free port to another process in between."""
AUTH = ("test", "test")
"""The development credentials of the Procfile's .env."""
CLI_TIMEOUT_S = 60.0


def run_cli(*args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m actors.grades.cli ARGS` with the test credentials; output as text."""
    full_env = {
        **os.environ,
        "GRADES_USER": AUTH[0],
        "GRADES_PASSWORD": AUTH[1],
        "PYTHONPATH": str(ROOT),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "actors.grades.cli", *args],
        cwd=cwd,
        env=full_env,
        check=False,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )


class Bus(Proc):
    """`grades bus` on two free ports, its log under ``data_dir``."""

    def __init__(self, data_dir: Path, log_dir: Path, name: str = "bus", **extra_env: object):
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.pub_url = f"tcp://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "BUS_URL": self.url,
            "BUS_PUB_URL": self.pub_url,
            "GRADES_DATA_DIR": str(data_dir),
            "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in extra_env.items()},
        }
        super().__init__(name, [sys.executable, "-m", "actors.bus.server"], env, log_dir)

    def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> None:
        self.wait_output("bus listening", timeout_s)


class Replica(Proc):
    """One `grades replica` (supervisor, storage, broker, snapshotter, the HTTP server).

    ``host`` is the address its ports listen on and the tests reach it at; ``netns``
    runs it inside a network namespace (``ip netns exec``), for two-host rehearsals.
    """

    def __init__(
        self,
        replica_id: int,
        data_dir: Path,
        log_dir: Path,
        bus: Bus | NatsCluster | None,
        next_url: str = "",
        workers: int | None = None,
        host: str = "127.0.0.1",
        netns: str = "",
        **extra_env: object,
    ):
        self.replica_id = replica_id
        self.host = host
        self.setter_port, self.getter_port = free_port(), free_port()
        self.set_base = f"http://{host}:{self.setter_port}"
        self.set_url = f"{self.set_base}/set"
        self.get_base = f"http://{host}:{self.getter_port}"
        # NOTE: ipc, as `grades replica` defaults to (workers and storage share a machine)
        self.storage_endpoint = ipc_endpoint(data_dir / f"replica{replica_id}", "storage")
        self.session = requests.Session()
        env = {
            **os.environ,
            "REPLICA_ID": str(replica_id),
            "GRADES_DATA_DIR": str(data_dir),
            "SETTER_PORT": str(self.setter_port),
            "GETTER_PORT": str(self.getter_port),
            "STORAGE_ENDPOINT": self.storage_endpoint,
            "BUS_URL": bus.url if bus else "none",
            "BUS_PUB_URL": bus.pub_url if bus else "",
            "NEXT_REPLICA_URL": next_url,
            "HTTP_HOST": host,
            "GRADES_USER": AUTH[0],
            "GRADES_PASSWORD": AUTH[1],
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        if workers is not None:
            env["GRADES_HTTP_WORKERS"] = str(workers)
        env.update({k: str(v) for k, v in extra_env.items()})
        prefix = ["ip", "netns", "exec", netns] if netns else []
        super().__init__(
            f"replica{replica_id}",
            [*prefix, sys.executable, "-m", "actors.grades.replica"],
            env,
            log_dir,
        )

    # --- lifecycle ---------------------------------------------------------

    def readyz(self) -> tuple[int, dict[str, Any]]:
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
        while not port_open(self.setter_port, self.host):
            if time.monotonic() > deadline:
                raise self.fail("setter port does not accept connections")
            time.sleep(0.05)
        return time.monotonic() - started

    def wait_http_up(self, base: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until ``base`` answers HTTP at all (any status)."""

        def up() -> bool:
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
        """The supervisor's live child of a role: storage, broker, snapshotter, http."""
        for proc in self.role(role):
            try:
                if proc.ppid() == self.started().pid:
                    return proc
            except psutil.NoSuchProcess:
                continue
        raise self.fail(f"has no running {role} child")

    def workers(self) -> list[psutil.Process]:
        """The gunicorn worker processes (each serves both ports)."""
        try:
            return self.child("http").children()
        except (HarnessError, psutil.NoSuchProcess):
            return []

    # --- HTTP --------------------------------------------------------------

    def set(
        self, user_id: str, session: requests.Session | None = None, **fields: object
    ) -> requests.Response:
        return (session or self.session).post(
            self.set_url, json={"user_id": user_id, **fields}, auth=AUTH, timeout=10
        )

    def accepts_set(self, user_id: str) -> bool:
        """One POST /set answered 200 (False on a refusal, an error or no answer in time)."""
        try:
            response = requests.post(
                self.set_url, json={"user_id": user_id}, auth=AUTH, timeout=SET_PROBE_TIMEOUT_S
            )
        except requests.RequestException:
            return False
        return response.status_code == 200

    def get(self, user_id: str, session: requests.Session | None = None) -> requests.Response:
        return (session or self.session).get(
            f"{self.get_base}/get", params={"user_id": user_id}, timeout=10
        )

    def record(self, user_id: str) -> dict[str, Any] | None:
        response = self.get(user_id)
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()["result"]
        return result

    def backup_rows(self) -> dict[str, list[int]]:
        """The replica's whole map (values and versions), via /backup."""
        from actors.grades.backup import read_backup

        response = self.session.get(f"{self.get_base}/backup", timeout=60)
        assert response.status_code == 200, response.text
        _meta, batches = read_backup(io.BytesIO(response.content))
        return {key: row for batch in batches for key, row in batch}


class Cluster(ProcGroup):
    """Buses and replicas sharing one data directory; logs beside it."""

    def __init__(self, directory: Path, workers: int | None = 1, backend: str = "builtin"):
        super().__init__(directory)
        self.backend = backend
        """What bus() starts: "builtin" (grades bus) or "jetstream" (3 nats-server nodes)."""
        self.data_dir = self.dir / "data"
        self.log_dir = self.dir / "logs"
        self.workers = workers

    def bus(self, start: bool = True, **env: Any) -> Bus | NatsCluster:
        if self.backend == "jetstream" and start:
            return self.nats_cluster()
        bus = self.add(Bus(self.data_dir, self.log_dir, **env))
        if start:
            bus.start()
            bus.wait_listening()
        return bus

    def nats_cluster(self, size: int = 3, sync: str = "always") -> NatsCluster:
        """A JetStream cluster of ``size`` nodes, started and healthy.

        Nine ports are picked free and bound a moment later, by three processes: another
        process may take one in between. A start that fails on a port in use is retried
        with fresh ports (up to START_ATTEMPTS), as STYLE.md's fixtures do.
        """
        home = self.data_dir / "nats"
        for attempt in range(1, START_ATTEMPTS + 1):
            nodes = [self.add(NatsNode(k, home, self.log_dir, sync)) for k in range(1, size + 1)]
            for node in nodes:
                node.write_config(nodes)
            cluster = NatsCluster(nodes)
            try:
                cluster.start()
                return cluster
            except HarnessError:
                lost_port = any("address already in use" in n.output() for n in nodes)
                if not lost_port or attempt == START_ATTEMPTS:
                    raise
                for node in nodes:
                    self.stop(node)
                    node.log_path.rename(node.log_path.with_suffix(f".attempt{attempt}.log"))
                shutil.rmtree(home, ignore_errors=True)
        raise AssertionError("unreachable")

    def launch_fresh(self) -> tuple[Bus | NatsCluster, Replica, Replica, float]:
        """The Procfile's cluster launched at once, as `make run` does: a bus and two new
        replicas, each naming the other as the peer to restore from; nothing waited for.

        Returns:
            The bus, replicas 1 and 2, and the time.monotonic() of the launch.
        """
        bus = self.bus(start=False)
        one = self.replica(1, bus, start=False)
        two = self.replica(2, bus, next_url=one.get_base, start=False)
        one.env["NEXT_REPLICA_URL"] = two.get_base
        launched = time.monotonic()
        for proc in (bus, one, two):
            proc.start()
        return bus, one, two, launched

    def replica(
        self,
        replica_id: int,
        bus: Bus | NatsCluster | None,
        next_url: str = "",
        start: bool = True,
        wait: bool = True,
        host: str = "127.0.0.1",
        netns: str = "",
        **env: object,
    ) -> Replica:
        replica = self.add(
            Replica(
                replica_id,
                self.data_dir,
                self.log_dir,
                bus,
                next_url,
                self.workers,
                host=host,
                netns=netns,
                **env,
            )
        )
        if start:
            replica.start()
            if wait:
                replica.wait_ready()
        return replica


def seconds_until_sets_accepted(
    replicas: list[Replica], started: float, timeout_s: float
) -> dict[int, float]:
    """Seconds from ``started`` (time.monotonic()) until each replica answered a POST /set
    with 200, by replica id; the replicas still refusing at the deadline are left out."""
    accepted: dict[int, float] = {}
    deadline = started + timeout_s
    while len(accepted) < len(replicas) and time.monotonic() < deadline:
        for replica in replicas:
            if replica.replica_id not in accepted and replica.accepts_set(
                f"probe-{replica.replica_id}"
            ):
                accepted[replica.replica_id] = time.monotonic() - started
        time.sleep(SET_PROBE_EVERY_S)
    return accepted
