"""The service manager of a chaos run: a top-level process that died is started again.

It does what systemd does with the units ``honcho export systemd`` writes
(``Restart=always``, ``KillMode=process``) and the default ``RestartSec=100ms``:
when a Procfile process exits, it is started again 0.1 s later with the same
command; its children are not touched (they stop on their own: the supervisors
give them PDEATHSIG, PostgreSQL's backends notice the postmaster is gone).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from actors.runtime.testing import Proc

__all__ = ["RESTART_SEC", "Manager"]

RESTART_SEC = 0.1
"""systemd's default RestartSec: the pause between an exit and the next start."""
CHECK_EVERY_S = 0.02


class Manager(threading.Thread):
    """Watches ``procs`` and restarts one RESTART_SEC after it exits, until stopped."""

    def __init__(self, procs: dict[str, Proc], on_restart: Callable[[str], None] | None = None):
        super().__init__(name="chaos-manager", daemon=True)
        self.procs = procs
        self.on_restart = on_restart
        self.restarts: dict[str, int] = dict.fromkeys(procs, 0)
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        down_since: dict[str, float] = {}
        while not self._stop_event.wait(CHECK_EVERY_S):
            with self._lock:
                for name, proc in self.procs.items():
                    if proc.running():
                        continue
                    now = time.monotonic()
                    since = down_since.setdefault(name, now)
                    if now - since >= RESTART_SEC:
                        del down_since[name]
                        proc.start()
                        self.restarts[name] += 1
                        if self.on_restart is not None:
                            self.on_restart(name)

    def stop(self) -> None:
        """No more restarts (before the processes themselves are stopped)."""
        self._stop_event.set()
        self.join(timeout=5)
