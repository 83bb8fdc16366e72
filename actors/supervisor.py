"""`grades replica`: runs one replica's processes and keeps them running.

Children, started in this order: the storage actor, the broker actor (unless
BUS_URL=none), and the setter and getter gunicorn servers. A child that dies
is restarted with backoff, and the cause is printed; the others keep running
(the storage actor restores itself). A child that keeps dying right after it
starts means something is wrong that a restart will not fix (a port in use, a
bad setting): the replica then stops everything and exits 1. SIGTERM/SIGINT
stop all children (SIGTERM, then SIGKILL after STOP_WAIT_S) and exit 0.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from actors.base import set_title, setup_logging
from actors.client import Client, RemoteError
from actors.config import ReplicaConfig
from actors.protocol import Status

__all__ = ["Child", "ReplicaSupervisor", "main"]

STOP_WAIT_S = 4.0
"""honcho SIGKILLs after 5 s: children get a little less."""
CHECK_EVERY_S = 0.2
BACKOFF_S = (0.5, 1.0, 2.0, 4.0)
QUICK_DEATH_S = 3.0
"""A child that dies sooner than this after starting counts as failing to start."""
MAX_QUICK_DEATHS = 5
HTTP_DIR = Path(__file__).resolve().parent.parent / "http"


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


class Child:
    """One supervised process: its command, its current Popen and its history."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.name = name
        self.argv = argv
        self.env = env
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.quick_deaths = 0
        self.restart_at = 0.0
        self.restarts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env)
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class ReplicaSupervisor:
    def __init__(self, config: ReplicaConfig):
        self.config = config
        self.log = logging.getLogger(f"replica[{config.replica_id}]")
        self._stopping = False
        self.children = self._children()

    def _children(self) -> list[Child]:
        cfg = self.config
        env = {**os.environ, "STORAGE_ENDPOINT": cfg.storage_endpoint,
               "REPLICA_ID": str(cfg.replica_id), "PYTHONUNBUFFERED": "1"}
        python = sys.executable
        http_env = {**env, "PROMETHEUS_MULTIPROC_DIR": str(self._metrics_dir())}
        children = [Child("storage", [python, "-m", "actors.storage"], env)]
        if cfg.replicated:
            children.append(Child("broker", [python, "-m", "actors.broker"], env))
        for role, port, workers in (("setter", cfg.setter_port, cfg.setter_workers),
                                    ("getter", cfg.getter_port, cfg.getter_workers)):
            children.append(Child(role, [
                python, "-m", "gunicorn", "--worker-class", "actors.http_worker.GradesWorker",
                "--pythonpath", str(HTTP_DIR), "--workers", str(workers),
                "--bind", f"{cfg.http_host}:{port}", "--graceful-timeout", "3",
                "--timeout", "30", "--keep-alive", "5", "--backlog", "2048",
                "--log-level", "warning", "--no-control-socket", "--name", f"grades: {role} replica={cfg.replica_id}",
                f"{role}:get_app()",
            ], http_env))
        return children

    def _metrics_dir(self) -> Path:
        """Where HTTP workers keep their prometheus_client files; stale ones would lie."""
        directory = self.config.run_dir / "metrics"
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        return directory

    def _on_signal(self, signum, _frame) -> None:
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        if not (HTTP_DIR / "setter.py").exists():
            self.log.error("cannot find the HTTP apps in %s", HTTP_DIR)
            return 1
        for child in self.children:
            self.log.info("starting %s", child.name)
            child.start()
        status = self._watch()
        self._stop_all()
        return status

    def _watch(self) -> int:
        ready_announced = False
        with Client(self.config.storage_endpoint, timeout_s=1.0) as client:
            while not self._stopping:
                time.sleep(CHECK_EVERY_S)
                if self._stopping:
                    break
                for child in self.children:
                    if self._check(child) == "give up":
                        return 1
                if not ready_announced:
                    ready_announced = self._announce_ready(client)
        return 0

    def _check(self, child: Child) -> str:
        now = time.monotonic()
        if child.process is None:
            if now >= child.restart_at:
                self.log.info("restarting %s (restart #%d)", child.name, child.restarts)
                child.start()
            return "waiting"
        code = child.process.poll()
        if code is None:
            if now - child.started_at > QUICK_DEATH_S:
                child.quick_deaths = 0
            return "running"
        lived = now - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if child.quick_deaths >= MAX_QUICK_DEATHS:
            self.log.error("%s %s %d times right after starting; giving up (see its output "
                           "above: a port in use or a bad setting?)", child.name,
                           _signal_name(code), child.quick_deaths)
            return "give up"
        delay = BACKOFF_S[min(child.quick_deaths, len(BACKOFF_S) - 1)]
        self.log.warning("%s (pid %d) %s after %.1f s; restarting in %.1f s", child.name,
                         child.process.pid, _signal_name(code), lived, delay)
        child.process = None
        child.restarts += 1
        child.restart_at = now + delay
        return "dead"

    def _announce_ready(self, client: Client) -> bool:
        try:
            status = client.call(Status(), timeout_s=0.5)
        except RemoteError:
            return False
        if status["phase"] != "ready":
            return False
        cfg = self.config
        self.log.info("replica %d is ready with %d rows: POST http://%s:%d/set, "
                      "GET http://%s:%d/get?user_id=..., GET http://%s:%d/backup",
                      cfg.replica_id, status["rows"], cfg.http_host, cfg.setter_port,
                      cfg.http_host, cfg.getter_port, cfg.http_host, cfg.getter_port)
        return True

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.alive()]
        for child in reversed(running):
            child.process.terminate()
        deadline = time.monotonic() + STOP_WAIT_S
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log.warning("%s did not stop in %.0f s; killing it", child.name, STOP_WAIT_S)
                child.process.kill()
                child.process.wait()
        self.log.info("stopped")


def _lock(run_dir: Path, replica_id: int):
    """One replica per id and data directory; a second gets a clear refusal."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / "replica.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise SystemExit(f"grades: replica {replica_id} is already running on {run_dir} "
                         f"(pid {handle.read().strip() or '?'})") from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def main() -> int:
    config = ReplicaConfig.from_env()
    setup_logging(f"replica[{config.replica_id}]")
    set_title(f"grades: replica={config.replica_id} supervisor")
    lock = _lock(config.run_dir, config.replica_id)
    try:
        return ReplicaSupervisor(config).run()
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
