"""Where the time goes from a SIGKILL of a PostgreSQL service's supervisor to its next 2xx.

One service (and accrual for gophermart) on a private PostgreSQL; its supervisor is
killed N times and started again RESTART_SEC later, as the service manager would. Per
kill, seconds from the kill to: the old port refusing, the new supervisor's spawn, its
log lines (schema checked, HTTP and actors started, ready), the port accepting, and the
first 2xx answered by the new server (asked every 5 ms); then the medians:

    python -m bench.chaos.restart_timeline gophermart --kills 6
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

from actors.runtime.pg.server import PostgresServer
from actors.runtime.supervisor import QUICK_DEATH_S
from actors.runtime.testing import HttpService, free_port, wait_until
from bench.chaos.manager import RESTART_SEC

__all__ = ["main"]

ASK_EVERY_S = 0.005
SETTLE_TIMEOUT_S = 60.0
LOG_LINES = ("schema is current", "starting http", "is ready on", "answers its liveness")
"""The supervisor's lines stamped (its log's asctime, milliseconds)."""


def _launch(service: str, dsn: str, log_dir: Path) -> tuple[HttpService, list[HttpService], str]:
    """The service, what it needs, and the path of a GET that answers 2xx."""
    if service == "gophermart":
        from actors.accrual.testing import Accrual
        from actors.gophermart.testing import Gophermart

        accrual = Accrual(dsn, log_dir, workers=2)
        accrual.start()
        accrual.wait_ready()
        gophermart = Gophermart(dsn, accrual.base, log_dir, workers=2)
        gophermart.start()
        gophermart.wait_ready()
        gophermart.register("timeline-user", "timeline-password")
        return gophermart, [accrual], "/api/user/balance"
    if service == "segments":
        from actors.segments.testing import Segments

        segments = Segments(dsn, log_dir, workers=2)
        segments.start()
        segments.wait_ready()
        return segments, [], "/api/users/1/segments"
    from actors.balances.testing import Balances

    balances = Balances(dsn, log_dir, http_workers=2)
    balances.start()
    balances.wait_ready()
    user = balances.create_user("timeline", 0)
    return balances, [], f"/api/v1/user/{user['id']}"


def _refused(port: int) -> float:
    """When the old server stopped listening."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.001)
        except OSError:
            return time.time()


def _first_2xx(service: HttpService, path: str) -> float:
    session = service.session  # keeps gophermart's token
    while True:
        try:
            if 200 <= session.get(service.url(path), timeout=5).status_code < 300:
                return time.time()
        except requests.RequestException:
            pass
        time.sleep(ASK_EVERY_S)


def _watch_start(service: HttpService, stamps: dict[str, float], done: threading.Event) -> None:
    """Stamp the port accepting (gunicorn's master bound it: with the app preloaded, just
    before it forks its workers).

    NOTE: not the processes' creation times: psutil derives them from the boot time in
    whole seconds, so they are off by up to a second against time.time().
    """
    while not done.is_set() and "port accepts" not in stamps:
        try:
            with socket.create_connection(("127.0.0.1", service.port), timeout=0.2):
                stamps["port accepts"] = time.time()
        except OSError:
            time.sleep(0.002)


def _log_stamps(service: HttpService, since: float) -> dict[str, float]:
    found: dict[str, float] = {}
    for line in service.output().splitlines():
        try:
            stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        except ValueError:
            continue
        for marker in LOG_LINES:
            if stamp >= since and marker in line and marker not in found:
                found[marker] = stamp
    return found


def _settled(service: HttpService) -> bool:
    """Ready, and its supervisor old enough that a kill is no failure to start."""
    try:
        age = time.time() - psutil.Process(service.started().pid).create_time()
    except psutil.Error:
        return False
    return age > QUICK_DEATH_S and service.ready()


def _one_kill(service: HttpService, path: str) -> dict[str, float]:
    wait_until(lambda: _settled(service), SETTLE_TIMEOUT_S, "a settled supervisor")
    ready_lines = service.output().count("is ready on")
    killed = time.time()
    os.kill(service.started().pid, signal.SIGKILL)
    service.started().wait()
    stamps = {"old port refuses": _refused(service.port)}
    time.sleep(max(0.0, killed + RESTART_SEC - time.time()))  # NOTE: the manager's pause
    service.start()
    stamps["spawn"] = time.time()
    done = threading.Event()
    watcher = threading.Thread(target=_watch_start, args=(service, stamps, done), daemon=True)
    watcher.start()
    stamps["first 2xx"] = _first_2xx(service, path)
    done.set()
    watcher.join()
    wait_until(
        lambda: service.output().count("is ready on") > ready_lines,
        SETTLE_TIMEOUT_S,
        "the new supervisor's ready line",
    )
    stamps.update(_log_stamps(service, killed))
    return {name: at - killed for name, at in stamps.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", choices=("gophermart", "segments", "balances"))
    parser.add_argument("--kills", type=int, default=6)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="restart-timeline-"))
    server = PostgresServer(root / "data", free_port())
    server.init()
    server.start(timeout_s=SETTLE_TIMEOUT_S)
    started: list[HttpService] = []
    rows = []
    try:
        service, needed, path = _launch(args.service, server.create_database("timeline"), root)
        started = [*needed, service]
        for _ in range(args.kills):
            row = _one_kill(service, path)
            rows.append(row)
            print("  ".join(f"{k} {v:.3f}" for k, v in sorted(row.items(), key=lambda kv: kv[1])))
    finally:
        for proc in reversed(started):
            proc.stop()
        server.stop(timeout_s=SETTLE_TIMEOUT_S)
        shutil.rmtree(root, ignore_errors=True)
    print(f"medians of {len(rows)} kills (s after the kill):")
    names = {name for row in rows for name in row}
    medians = {name: statistics.median(r[name] for r in rows if name in r) for name in names}
    for name, value in sorted(medians.items(), key=lambda kv: kv[1]):
        print(f"  {name:20s} {value:6.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
