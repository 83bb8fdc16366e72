"""Starting and stopping what the benchmarks measure: our bus and replicas, the Go
peers, a bare nats-server.

Every process runs in its own session with its output in a log file inside a
temporary directory that a ``Stack`` owns; every wait has a deadline; stopping
is SIGTERM, a deadline, then SIGKILL of the whole process group and every
descendant. ``with Stack("name") as stack:`` stops all of its processes in
reverse order and removes its directory, also when a measurement fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = Path(os.environ.get("GRADES_PEERS_DIR", ROOT.parent / "shared" / "peers"))
AUTH = ("test", "test")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
PEERS_START_TIMEOUT_S = 240.0  # the first run builds nats.go from source
LOGS = {"dir": None, "always": False}
"""Where stacks copy their process logs (run.py sets it): on failure, or always if asked."""
PEER_PORTS = {"plain": {"set": 18080, "get": 18081},
              "js1": {"set": 18181, "get": 18180},
              "js2": {"set": 18383, "get": 18282},
              "nats": {"client": 14222}}


class BenchError(RuntimeError):
    """A measurement cannot go on; the message says why (and shows process output)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.05):
    """Poll predicate until truthy; BenchError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


class Proc:
    """One child process (and its descendants) with its output in a file."""

    def __init__(self, name: str, argv: list[str], env: dict, work_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = work_dir / f"{name}.log"
        self.process: subprocess.Popen | None = None
        self._out = None
        self.ok_codes = {0, -signal.SIGTERM, 128 + signal.SIGTERM}

    def start(self) -> None:
        self._out = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=self._out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        start_new_session=True)

    def output(self, tail_lines: int = 0) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-tail_lines:]) if tail_lines else text

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ps(self) -> psutil.Process:
        return psutil.Process(self.process.pid)

    def descendants(self) -> list[psutil.Process]:
        try:
            return self.ps().children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def find(self, marker: str) -> list[psutil.Process]:
        """Descendants whose command line (process title) contains marker."""
        found = []
        for proc in self.descendants():
            try:
                if marker in " ".join(proc.cmdline()):
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return found

    def fail(self, why: str) -> BenchError:
        return BenchError(f"{self.name}: {why}\n--- last lines of {self.log_path.name} ---\n"
                          f"{self.output(40)}")

    def kill9(self) -> None:
        """SIGKILL the process and everything it started at once, as a crash would."""
        if self.process is not None:
            self._kill_all(self.descendants())

    def _kill_all(self, victims: list[psutil.Process]) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for victim in victims:
            try:
                victim.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=STOP_TIMEOUT_S)
        if self.process.poll() is None:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        if self._out is not None:
            self._out.close()
            self._out = None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait, then SIGKILL the group and every descendant. Returns the exit code
        (None if it had to be killed)."""
        if self.process is None:
            return 0
        code = self.process.poll()
        victims = self.descendants()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                print(f"[procs] {self.name} ignored SIGTERM for {timeout_s:.0f} s; killing it",
                      file=sys.stderr, flush=True)
                code = None
        self._kill_all(victims)  # whatever is left (the group, orphans that left it)
        return code


class Bus(Proc):
    def __init__(self, work_dir: Path, name: str = "bus"):
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.pub_url = f"tcp://127.0.0.1:{free_port()}"
        env = {**os.environ, "BUS_URL": self.url, "BUS_PUB_URL": self.pub_url,
               "GRADES_DATA_DIR": str(work_dir / "data"), "PYTHONUNBUFFERED": "1"}
        super().__init__(name, [sys.executable, "-m", "actors.bus.server"], env, work_dir)

    def wait_listening(self, timeout_s: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: "bus listening" in self.output() or not self.running(),
                   timeout_s, "the bus to listen")
        if not self.running():
            raise self.fail("exited at start")


class Replica(Proc):
    """One `grades replica` (supervisor, storage, broker, setter and getter servers)."""

    def __init__(self, replica_id: int, work_dir: Path, bus: Bus | None, next_url: str = ""):
        self.replica_id = replica_id
        self.setter_port, self.getter_port = free_port(), free_port()
        self.set_base = f"http://127.0.0.1:{self.setter_port}"
        self.get_base = f"http://127.0.0.1:{self.getter_port}"
        self.storage_endpoint = f"tcp://127.0.0.1:{free_port()}"
        self.session = requests.Session()
        env = {
            **os.environ, "REPLICA_ID": str(replica_id),
            "GRADES_DATA_DIR": str(work_dir / "data"),
            "SETTER_PORT": str(self.setter_port), "GETTER_PORT": str(self.getter_port),
            "STORAGE_ENDPOINT": self.storage_endpoint,
            "BUS_URL": bus.url if bus else "none", "BUS_PUB_URL": bus.pub_url if bus else "",
            "NEXT_REPLICA_URL": next_url, "GRADES_USER": AUTH[0], "GRADES_PASSWORD": AUTH[1],
            "PYTHONUNBUFFERED": "1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        super().__init__(f"replica{replica_id}", [sys.executable, "-m", "actors.grades.replica"],
                         env, work_dir)

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

    def role(self, role: str) -> list[psutil.Process]:
        """Processes titled 'grades: <role> replica=N' (a gunicorn master and its workers)."""
        return self.find(f"grades: {role} replica={self.replica_id}")

    def workers(self, role: str) -> list[psutil.Process]:
        """The gunicorn worker processes of the setter or getter."""
        procs = self.role(role)
        pids = {p.pid for p in procs}
        masters = [p for p in procs if p.ppid() not in pids]
        workers = []
        for master in masters:
            try:
                workers.extend(master.children())
            except psutil.NoSuchProcess:
                pass
        return workers


class Peers(Proc):
    """`peers.sh plain|js|all`: builds the Go servers in a temp dir and runs them."""

    def __init__(self, mode: str, work_dir: Path):
        self.mode = mode
        self.ports = [PEER_PORTS["plain"]["set"], PEER_PORTS["plain"]["get"]] \
            if mode in ("plain", "all") else []
        if mode in ("js", "all"):
            self.ports += [PEER_PORTS["js1"]["set"], PEER_PORTS["js1"]["get"],
                           PEER_PORTS["js2"]["set"], PEER_PORTS["js2"]["get"],
                           PEER_PORTS["nats"]["client"]]
        env = {**os.environ, "HOME": os.environ.get("HOME", "/root")}
        super().__init__(f"peers-{mode}", ["bash", str(PEERS_DIR / "peers.sh"), mode],
                         env, work_dir)

    def start(self) -> None:
        busy = [p for p in self.ports if port_open(p)]
        if busy:
            raise BenchError(f"peer ports {busy} are already in use (stale peers.sh?): "
                             "stop whatever listens there first")
        super().start()

    def wait_up(self, timeout_s: float = PEERS_START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(port_open(p) for p in self.ports):
            if not self.running():
                raise self.fail("peers.sh exited before its servers listened")
            if time.monotonic() > deadline:
                raise self.fail(f"peer ports {self.ports} not all open after {timeout_s:.0f} s")
            time.sleep(0.2)


class NatsServer(Proc):
    """A bare `nats-server -js` with file storage in the stack's directory."""

    def __init__(self, work_dir: Path):
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        store = work_dir / "jetstream"
        store.mkdir()
        super().__init__("nats-server", ["nats-server", "-js", "-sd", str(store), "-a",
                                         "127.0.0.1", "-p", str(self.port)],
                         dict(os.environ), work_dir)
        self.ok_codes.add(1)  # nats-server exits 1 after a clean shutdown on SIGTERM

    def wait_up(self, timeout_s: float = START_TIMEOUT_S) -> None:
        wait_until(lambda: port_open(self.port) or not self.running(), timeout_s,
                   "nats-server to listen")
        if not self.running():
            raise self.fail("exited at start")


class Stack:
    """The processes of one measurement, in one temp dir; stopped and removed on exit."""

    def __init__(self, name: str):
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"grades-bench-{name}-"))
        self.procs: list[Proc] = []
        self.keep_logs = False  # set by a measurement that found a fault

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop_all(show_logs=exc_type is not None and exc_type is not BenchError)
        if LOGS["dir"] and (LOGS["always"] or self.keep_logs or exc_type is not None):
            kept = Path(LOGS["dir"]) / self.name
            kept.mkdir(parents=True, exist_ok=True)
            for log in self.dir.glob("*.log"):
                shutil.copy(log, kept / log.name)
            print(f"  [procs] logs of {self.name} kept in {kept}", flush=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def add(self, proc: Proc) -> Proc:
        self.procs.append(proc)
        return proc

    def bus(self) -> Bus:
        bus = self.add(Bus(self.dir))
        bus.start()
        bus.wait_listening()
        return bus

    def replica(self, replica_id: int, bus: Bus | None, next_url: str = "",
                wait: bool = True) -> Replica:
        replica = self.add(Replica(replica_id, self.dir, bus, next_url))
        replica.start()
        if wait:
            replica.wait_ready()
        return replica

    def peers(self, mode: str) -> Peers:
        peers = self.add(Peers(mode, self.dir))
        peers.start()
        peers.wait_up()
        return peers

    def nats(self) -> NatsServer:
        server = self.add(NatsServer(self.dir))
        server.start()
        server.wait_up()
        return server

    def stop(self, proc: Proc) -> None:
        if proc in self.procs:
            self.procs.remove(proc)
        code = proc.stop()
        if code not in proc.ok_codes:
            print(f"[procs] {proc.name} exited with {code}\n{proc.output(20)}",
                  file=sys.stderr, flush=True)

    def stop_all(self, show_logs: bool = False) -> None:
        for proc in list(reversed(self.procs)):
            if show_logs:
                print(f"--- {proc.name} ---\n{proc.output(30)}", file=sys.stderr, flush=True)
            try:
                self.stop(proc)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"[procs] stopping {proc.name}: {exc}", file=sys.stderr, flush=True)
        self.procs.clear()
