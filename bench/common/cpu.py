"""Where the CPU goes: CPU seconds of named process groups over one measured run.

    meter = CpuMeter({"http workers": lambda: service_workers(), "postgres": pg_pids})
    with meter:
        result = wrk.run(...)                 # wrk is our child: counted as "load"
    meter.per_op_us(result.requests)          # {"http workers": 310.0, "postgres": 95.0, ...}

A group is a callable returning pids, asked at the start and at the end (a pid that
appears meanwhile counts from zero). "load" is the CPU of this process's children that
ended during the run (wrk, pgbench), from getrusage. On a 2-core machine shared with
others, CPU per request is steadier than requests per second, and it names the
process that costs what.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from typing import Self

import psutil

from bench.common import profile

__all__ = ["CpuMeter", "children_matching", "cpu_seconds", "service_groups", "tree_pids"]


def tree_pids(pid: int) -> list[int]:
    """pid and its descendants."""
    try:
        root = psutil.Process(pid)
        return [pid, *(p.pid for p in root.children(recursive=True))]
    except psutil.NoSuchProcess:
        return []


def children_matching(pid: int, marker: str, invert: bool = False) -> list[int]:
    """Descendants of pid whose command line (title) contains marker (or not, inverted)."""
    found = []
    try:
        procs = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for proc in procs:
        try:
            if (marker in " ".join(proc.cmdline())) != invert:
                found.append(proc.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def cpu_seconds(procs: Iterable[psutil.Process]) -> float:
    """User+system CPU seconds the processes have spent so far (gone ones count 0)."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _cpu(pid: int) -> float:
    """CPU seconds of pid, and of its children it has reaped (a postmaster's backends
    that ended during the run, pgbench's for instance)."""
    try:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system + times.children_user + times.children_system
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return 0.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """With a ``label``, a --profile run also samples the groups' processes with py-spy
    (bench.common.profile) during the first run of that label."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]], label: str = ""):
        self.groups = groups
        self.seconds: dict[str, float] = {}
        self._profile: AbstractContextManager[None] = (
            profile.recording(label, groups) if label else nullcontext()
        )

    def __enter__(self) -> Self:
        self._profile.__enter__()
        self._start = {
            name: {pid: _cpu(pid) for pid in pids()} for name, pids in self.groups.items()
        }
        self._load = _children_cpu()
        return self

    def __exit__(self, *exc) -> None:
        for name, pids in self.groups.items():
            before = self._start[name]
            now = {pid: _cpu(pid) for pid in set(pids()) | set(before)}
            self.seconds[name] = sum(max(0.0, now[pid] - before.get(pid, 0.0)) for pid in now)
        self.seconds["load"] = _children_cpu() - self._load
        self._profile.__exit__(*exc)

    def per_op_us(self, operations: int) -> dict[str, float]:
        return {
            name: round(1e6 * seconds / max(1, operations), 1)
            for name, seconds in self.seconds.items()
        }


def service_groups(service_pid: int | None, pg_pid: int) -> dict[str, Callable[[], list[int]]]:
    """The usual groups: a service's gunicorn workers ("http"), its other processes
    ("actors": supervisor, actor processes, gunicorn master) and PostgreSQL ("pg")."""
    groups: dict[str, Callable[[], list[int]]] = {}
    if service_pid is not None:
        groups["http"] = lambda: children_matching(service_pid, "worker [")
        groups["actors"] = lambda: [
            service_pid,
            *children_matching(service_pid, "worker [", invert=True),
        ]
    groups["pg"] = lambda: tree_pids(pg_pid)
    return groups
