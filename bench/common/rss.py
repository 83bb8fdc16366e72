"""Peak resident memory of a process tree while something runs.

    with PeakRss(service.process.pid) as rss:
        ...                            # the work
    rss.peak_total_mb, rss.peak_largest_mb, rss.before_total_mb

Samples every SAMPLE_S in a thread: the sum over the root and its descendants, and the
largest single process (a gunicorn worker streaming a report, say).
"""

from __future__ import annotations

import threading
from typing import Self

import psutil

__all__ = ["PeakRss", "tree_rss_mb"]

SAMPLE_S = 0.05
MB = 2**20


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """(sum, largest) RSS in MiB of pid and its descendants."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0, 0.0
    sizes = []
    for proc in procs:
        try:
            sizes.append(proc.memory_info().rss / MB)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return sum(sizes), max(sizes, default=0.0)


class PeakRss:
    def __init__(self, pid: int):
        self.pid = pid
        self.before_total_mb, self.before_largest_mb = tree_rss_mb(pid)
        self.peak_total_mb, self.peak_largest_mb = self.before_total_mb, self.before_largest_mb
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            total, largest = tree_rss_mb(self.pid)
            self.peak_total_mb = max(self.peak_total_mb, total)
            self.peak_largest_mb = max(self.peak_largest_mb, largest)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def as_dict(self) -> dict:
        return {
            k: round(getattr(self, k), 1)
            for k in ("before_total_mb", "before_largest_mb", "peak_total_mb", "peak_largest_mb")
        }
