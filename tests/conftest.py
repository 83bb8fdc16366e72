"""Process fixtures: real buses and replicas on free 127.0.0.1 ports.

Every wait has a deadline; teardown is SIGTERM, wait, SIGKILL, and a process
that had to be killed (or exited non-zero) fails the test with its output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
AUTH = ("test", "test")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 8.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    """Poll predicate until it returns a truthy value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


class Proc:
    """A child process whose output goes to a file the test can show."""

    def __init__(self, name: str, argv: list[str], env: dict, log_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self._out = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=self._out,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill9(self) -> None:
        """SIGKILL the process and everything it started, as a crash would."""
        if not self.running():
            return
        victims = self.descendants()
        os.killpg(self.process.pid, signal.SIGKILL)
        for victim in victims:
            try:
                victim.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=STOP_TIMEOUT_S)
        psutil.wait_procs(victims, timeout=STOP_TIMEOUT_S)

    def stop(self) -> int:
        """SIGTERM and wait; SIGKILL (and fail) if it does not stop in time."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.terminate()
        try:
            return self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill9()
            pytest.fail(f"{self.name} ignored SIGTERM for {STOP_TIMEOUT_S} s:\n{self.output()}")


class Bus(Proc):
    def __init__(self, data_dir: Path, log_dir: Path):
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.pub_url = f"tcp://127.0.0.1:{free_port()}"
        env = {**os.environ, "BUS_URL": self.url, "BUS_PUB_URL": self.pub_url,
               "GRADES_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
        super().__init__("bus", [sys.executable, "-m", "actors.bus"], env, log_dir)

    def wait_listening(self) -> None:
        wait_until(lambda: "bus listening" in self.output() or not self.running(),
                   START_TIMEOUT_S, "the bus to listen")
        assert self.running(), f"bus died:\n{self.output()}"


class Replica(Proc):
    """One `grades replica` (supervisor + its children) with HTTP helpers."""

    def __init__(self, replica_id: int, data_dir: Path, log_dir: Path, bus: Bus | None,
                 next_url: str = "", **extra_env):
        self.replica_id = replica_id
        self.setter_port, self.getter_port = free_port(), free_port()
        self.set_url = f"http://127.0.0.1:{self.setter_port}/set"
        self.get_base = f"http://127.0.0.1:{self.getter_port}"
        self.session = requests.Session()
        env = {
            **os.environ, "REPLICA_ID": str(replica_id), "GRADES_DATA_DIR": str(data_dir),
            "SETTER_PORT": str(self.setter_port), "GETTER_PORT": str(self.getter_port),
            "STORAGE_ENDPOINT": f"tcp://127.0.0.1:{free_port()}",
            "BUS_URL": bus.url if bus else "none", "BUS_PUB_URL": bus.pub_url if bus else "",
            "NEXT_REPLICA_URL": next_url, "GRADES_USER": AUTH[0], "GRADES_PASSWORD": AUTH[1],
            "SETTER_WORKERS": "1", "GETTER_WORKERS": "1", "PYTHONUNBUFFERED": "1",
            **{k: str(v) for k, v in extra_env.items()},
        }
        self.storage_endpoint = env["STORAGE_ENDPOINT"]
        super().__init__(f"replica{replica_id}", [sys.executable, "-m", "actors.supervisor"],
                         env, log_dir)

    # --- lifecycle -------------------------------------------------------

    def ready(self) -> bool:
        try:
            return self.session.get(f"{self.get_base}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if not self.running():
                pytest.fail(f"{self.name} exited:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} not ready after {timeout_s} s:\n{self.output()}")
            time.sleep(0.1)
        self.wait_http_up(self.set_url.rsplit("/", 1)[0])

    def wait_http_up(self, base: str) -> None:
        def up():
            try:
                self.session.get(f"{base}/nothing", timeout=2)
                return True
            except requests.RequestException:
                return False
        wait_until(up, START_TIMEOUT_S, f"{base} to accept connections")

    def child(self, role: str) -> psutil.Process:
        """The live child process of a role: storage, broker, setter, getter."""
        marker = f"grades: {role} replica={self.replica_id}"  # the process title
        for proc in psutil.Process(self.process.pid).children():
            try:
                if marker in " ".join(proc.cmdline()):
                    return proc
            except psutil.NoSuchProcess:
                continue
        pytest.fail(f"{self.name} has no running {role} child")

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
        import io

        from actors.backup import read_backup
        response = self.session.get(f"{self.get_base}/backup", timeout=60)
        assert response.status_code == 200, response.text
        _meta, batches = read_backup(io.BytesIO(response.content))
        return {key: row for batch in batches for key, row in batch}


class Cluster:
    """Creates buses and replicas for one test and stops them all afterwards."""

    def __init__(self, tmp_path: Path):
        self.data_dir = tmp_path / "data"
        self.log_dir = tmp_path / "logs"
        self.log_dir.mkdir()
        self.procs: list[Proc] = []

    def bus(self, start: bool = True) -> Bus:
        bus = Bus(self.data_dir, self.log_dir)
        self.procs.append(bus)
        if start:
            bus.start()
            bus.wait_listening()
        return bus

    def replica(self, replica_id: int, bus: Bus | None, next_url: str = "",
                start: bool = True, wait: bool = True, **env) -> Replica:
        replica = Replica(replica_id, self.data_dir, self.log_dir, bus, next_url, **env)
        self.procs.append(replica)
        if start:
            replica.start()
            if wait:
                replica.wait_ready()
        return replica

    def teardown(self) -> list[str]:
        problems = []
        for proc in reversed(self.procs):
            was_running = proc.running()
            code = proc.stop()
            if was_running and code != 0:
                problems.append(f"{proc.name} exited {code}:\n{proc.output()[-3000:]}")
        return problems


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    problems = cluster.teardown()
    if problems:
        pytest.fail("\n".join(problems))
