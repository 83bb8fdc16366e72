"""What else is using this (2-core) machine while we measure.

Between measurements every process the bench started is stopped, so CPU use
then belongs to someone else (another checkout's cluster, a test run). Each
measurement first waits, up to a bound, for the machine to be quiet, and
records how busy it was; a busy machine makes every figure of that
measurement (ours and the peer's alike) lower and noisier.
"""

from __future__ import annotations

import os
import platform
import time

import psutil

BUSY_PCT = 25.0  # whole-machine CPU % (100 = all cores) above which we call it busy
BUSY_CORES = 0.25  # cores used by others during a measurement worth a note
FOREIGN_MARKERS = ("grades:", "wrk ", "go-grades", "nats-server", "pytest")


def foreign_processes() -> list[str]:
    """Load-generating or grades processes that are not ours (not our descendants)."""
    mine = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            line = " ".join(proc.info["cmdline"] or []).strip()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if proc.info["pid"] not in mine and any(m in line + " " for m in FOREIGN_MARKERS):
            found.append(f"{proc.info['pid']} {line[:80]}")
    return found


def wait_quiet(max_wait_s: float, sample_s: float = 1.0) -> dict:
    """Sample whole-machine CPU until it is below BUSY_PCT or max_wait_s has passed."""
    started = time.monotonic()
    while True:
        busy = psutil.cpu_percent(interval=sample_s)
        waited = time.monotonic() - started
        if busy < BUSY_PCT or waited >= max_wait_s:
            return {
                "busy_pct": busy,
                "waited_s": round(waited, 1),
                "quiet": busy < BUSY_PCT,
                "load_avg_1m": os.getloadavg()[0],
                "foreign": foreign_processes()[:10],
            }


def _busy_seconds() -> float:
    """CPU seconds all cores spent running processes (or stolen by the host) since boot.

    irq and softirq time is left out: it is not charged to any process, and under our
    loads it is mostly loopback TCP work done for our own traffic.
    """
    times = psutil.cpu_times()
    return times.user + times.nice + times.system + getattr(times, "steal", 0.0)


def _own_seconds() -> float:
    """CPU seconds of this process and of every descendant that has been reaped.

    The bench reaps what it starts (wrk, the supervisors, peers.sh), and they reap
    theirs (storage, broker, gunicorn and its workers), so once a measurement has
    stopped its processes this holds all their CPU.
    """
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class ForeignCpu:
    """Cores that work other than ours used between start() and cores().

    Whole-machine busy time minus our own, so it also counts short-lived processes
    (another checkout's test run). Read it after the measurement stopped its
    processes. Kernel threads working for us (journal commits of our fsyncs) count
    as foreign: a few hundredths of a core.
    """

    def start(self) -> None:
        self._began = time.monotonic()
        self._busy = _busy_seconds()
        self._own = _own_seconds()

    def cores(self) -> float:
        busy = _busy_seconds() - self._busy
        own = _own_seconds() - self._own
        return max(0.0, busy - own) / max(1e-3, time.monotonic() - self._began)


def describe() -> dict:
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
