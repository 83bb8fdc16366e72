"""What the grades benchmarks start and stop: our bus and replicas (from
actors.grades.testing), the Go peers, a bare nats-server.

Every process runs in its own session with its output in a log file inside a
temporary directory that a ``Stack`` owns; every wait has a deadline; stopping
is SIGTERM, a deadline, then SIGKILL of the whole process group and every
descendant. ``with Stack("name") as stack:`` stops all of its processes in
reverse order and removes its directory, also when a measurement fails.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

from actors.grades.testing import AUTH, Cluster
from actors.runtime.testing import (
    ROOT,
    START_TIMEOUT_S,
    HarnessError,
    Proc,
    free_port,
    port_open,
    wait_until,
)
from bench.common.errors import BenchError

__all__ = ["AUTH", "BenchError", "PEERS_DIR", "PEER_PORTS", "LOGS", "Stack", "wait_until"]

PEERS_DIR = Path(os.environ.get("GRADES_PEERS_DIR", ROOT.parent / "shared" / "peers"))
PEERS_START_TIMEOUT_S = 240.0  # the first run builds nats.go from source
LOGS = {"dir": None, "always": False}
"""Where stacks copy their process logs (run.py sets it): on failure, or always if asked."""
PEER_PORTS = {
    "plain": {"set": 18080, "get": 18081},
    "js1": {"set": 18181, "get": 18180},
    "js2": {"set": 18383, "get": 18282},
    "nats": {"client": 14222},
}


class Peers(Proc):
    """`peers.sh plain|js|all`: builds the Go servers in a temp dir and runs them."""

    def __init__(self, mode: str, work_dir: Path):
        self.mode = mode
        self.ports = (
            [PEER_PORTS["plain"]["set"], PEER_PORTS["plain"]["get"]]
            if mode in ("plain", "all")
            else []
        )
        if mode in ("js", "all"):
            self.ports += [
                PEER_PORTS["js1"]["set"],
                PEER_PORTS["js1"]["get"],
                PEER_PORTS["js2"]["set"],
                PEER_PORTS["js2"]["get"],
                PEER_PORTS["nats"]["client"],
            ]
        env = {**os.environ, "HOME": os.environ.get("HOME", "/root")}
        super().__init__(
            f"peers-{mode}", ["bash", str(PEERS_DIR / "peers.sh"), mode], env, work_dir
        )
        self.ok_codes |= {-15, 143}  # the Go servers exit by SIGTERM

    def start(self) -> None:
        busy = [p for p in self.ports if port_open(p)]
        if busy:
            raise BenchError(
                f"peer ports {busy} are already in use (stale peers.sh?): "
                "stop whatever listens there first"
            )
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
        store.mkdir(parents=True)
        super().__init__(
            "nats-server",
            ["nats-server", "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(self.port)],
            dict(os.environ),
            work_dir,
        )
        self.ok_codes.add(1)  # nats-server exits 1 after a clean shutdown on SIGTERM

    def wait_up(self, timeout_s: float = START_TIMEOUT_S) -> None:
        wait_until(
            lambda: port_open(self.port) or not self.running(), timeout_s, "nats-server to listen"
        )
        if not self.running():
            raise self.fail("exited at start")


class Stack(Cluster):
    """The processes of one measurement, in one temp dir; stopped and removed on exit."""

    def __init__(self, name: str):
        super().__init__(Path(tempfile.mkdtemp(prefix=f"grades-bench-{name}-")), workers=None)
        self.name = name
        self.keep_logs = False  # set by a measurement that found a fault

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop_quietly(show_logs=exc_type is not None and not issubclass(exc_type, HarnessError))
        if LOGS["dir"] and (LOGS["always"] or self.keep_logs or exc_type is not None):
            kept = Path(LOGS["dir"]) / self.name
            kept.mkdir(parents=True, exist_ok=True)
            for log in self.log_dir.glob("*.log"):
                shutil.copy(log, kept / log.name)
            print(f"  [procs] logs of {self.name} kept in {kept}", flush=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def peers(self, mode: str) -> Peers:
        peers = self.add(Peers(mode, self.log_dir))
        peers.start()
        peers.wait_up()
        return peers

    def nats(self) -> NatsServer:
        server = self.add(NatsServer(self.log_dir))
        server.start()
        server.wait_up()
        return server

    def stop_quietly(self, show_logs: bool = False) -> None:
        """Stop everything, printing (not raising) what did not stop cleanly."""
        if show_logs:
            for proc in self.procs:
                print(f"--- {proc.name} ---\n{proc.output(30)}", file=sys.stderr, flush=True)
        for problem in self.stop_all():
            print(f"[stack] {problem[:2000]}", file=sys.stderr, flush=True)
