"""A supervisor process: starts a list of children and keeps them running.

A child that dies is restarted at once, and the cause is printed; the others
keep running. A child given a ``LivenessProbe`` (actors.runtime.liveness) is also
pinged through its own socket: one whose loop answers nothing for the probe's bound
while using no CPU (stopped, deadlocked) is killed with SIGKILL, said in one line, and
restarted as if it had died. Only a child that dies again right after it starts is restarted
with backoff (0.5, 1, 2, 4 s). A child that keeps dying right after it starts means
something is wrong that a restart will not fix (a port in use, a bad
setting): the supervisor then stops everything and exits 1. SIGTERM/SIGINT
stop all children (SIGTERM in reverse start order, then SIGKILL after
STOP_WAIT_S) and exit 0.

The supervisor knows no service: a service lists its children and may pass
``on_tick``, called every CHECK_EVERY_S while running (a service's
``actors.runtime.ready.ReadyAnnouncer`` there says once that it is ready). A child
with ``start_when`` starts only once that returns True (e.g. once the service is
ready), so its start does not compete for the CPU with the ones the service needs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import IO

from actors.runtime.lifeline import die_with_parent
from actors.runtime.liveness import LivenessProbe

__all__ = ["Child", "Supervisor", "exclusive_lock", "STOP_WAIT_S"]

STOP_WAIT_S = 4.0
"""honcho SIGKILLs after 5 s: children get a little less."""
CHECK_EVERY_S = 0.05
"""How often children are polled: a death is noticed within this (a few waitpid calls)."""
BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 4.0)
"""Delay before a restart, by quick deaths in a row: none after a child that ran a while."""
QUICK_DEATH_S = 3.0
"""A child that dies sooner than this after starting counts as failing to start."""
MAX_QUICK_DEATHS = 5


def _exit_cause(returncode: int) -> str:
    if returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM it when the supervisor dies, even by kill -9.

    NOTE: otherwise a supervisor killed with SIGKILL leaves its children running,
    holding their ports and sockets, and the service cannot be started again.
    """
    die_with_parent()


class Child:
    """One supervised process: its command, its current Popen and its history."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        quick_death_s: float = QUICK_DEATH_S,
        start_when: Callable[[], bool] | None = None,
        liveness: LivenessProbe | None = None,
    ):
        self.name = name
        self.argv = argv
        self.env = env
        self.quick_death_s = quick_death_s
        """A death sooner than this after starting counts as failing to start."""
        self.start_when = start_when
        """Started first once this returns True (checked every CHECK_EVERY_S), not with
        the others: a child the service needs only once it is up stays off the CPU its
        start competes for. Restarts do not wait for it."""
        self.liveness = liveness
        """Pings the child's serve loop; a child that stops answering is restarted."""
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.quick_deaths = 0
        self.restart_at = 0.0
        self.restarts = 0
        self.probed = False
        """The current process has answered its liveness probe (said once, in the log)."""

    def start(self) -> None:
        self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        self.probed = False
        if self.liveness is not None:
            self.liveness.restart()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Runs ``children`` until a signal or a child that cannot start."""

    def __init__(self, name: str, children: list[Child], on_tick: Callable[[], None] | None = None):
        self.log = logging.getLogger(name)
        self.children = children
        self.on_tick = on_tick
        self._stopping = False

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            if child.start_when is None:
                self.log.info("starting %s", child.name)
                child.start()
        try:
            status = self._watch()
        finally:
            self._stop_all()
        return status

    def _watch(self) -> int:
        while True:
            time.sleep(CHECK_EVERY_S)
            if self._stopping:  # set by the signal handler
                return 0
            for child in self.children:
                if self._check(child) == "give up":
                    return 1
            if self.on_tick is not None:
                self.on_tick()

    def _check(self, child: Child) -> str:
        now = time.monotonic()
        if child.process is None and child.start_when is not None:
            if not child.start_when():
                return "waiting"
            child.start_when = None
            self.log.info("starting %s", child.name)
            child.start()
            return "running"
        if child.process is None:
            if now >= child.restart_at:
                self.log.info("restarting %s (restart #%d)", child.name, child.restarts)
                child.start()
            return "waiting"
        code = child.process.poll()
        if code is None:
            if now - child.started_at > child.quick_death_s:
                child.quick_deaths = 0
            if child.liveness is not None and not child.liveness.check(child.process.pid):
                self.log.warning(
                    "%s (pid %d) answered no ping for %.1f s (stopped, deadlocked or spinning?); "
                    "killing it with SIGKILL to restart it",
                    child.name,
                    child.process.pid,
                    child.liveness.silent_for(),
                )
                child.process.kill()
            elif child.liveness is not None and not child.probed and child.liveness.answered:
                child.probed = True
                self.log.info(
                    "%s (pid %d) answers its liveness probe", child.name, child.process.pid
                )
            return "running"
        lived = now - child.started_at
        child.quick_deaths = child.quick_deaths + 1 if lived < child.quick_death_s else 0
        if child.quick_deaths >= MAX_QUICK_DEATHS:
            self.log.error(
                "%s %s %d times right after starting; giving up (see its output "
                "above: a port in use or a bad setting?)",
                child.name,
                _exit_cause(code),
                child.quick_deaths,
            )
            return "give up"
        delay = BACKOFF_S[min(child.quick_deaths, len(BACKOFF_S) - 1)]
        self.log.warning(
            "%s (pid %d) %s after %.1f s; restarting in %.1f s",
            child.name,
            child.process.pid,
            _exit_cause(code),
            lived,
            delay,
        )
        child.process = None
        child.restarts += 1
        child.restart_at = now + delay
        if delay == 0:
            self.log.info("restarting %s (restart #%d)", child.name, child.restarts)
            child.start()
        return "dead"

    def _stop_all(self) -> None:
        running = [(c.name, c.process) for c in self.children if c.process and c.alive()]
        for _, process in reversed(running):
            process.terminate()
        deadline = time.monotonic() + STOP_WAIT_S
        for name, process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log.warning("%s did not stop in %.0f s; killing it", name, STOP_WAIT_S)
                process.kill()
                process.wait()
        for child in self.children:
            if child.liveness is not None:
                child.liveness.close()
        self.log.info("stopped")


def exclusive_lock(path: Path, refusal: str) -> IO[str]:
    """Hold an flock on ``path`` for the process's life; SystemExit(refusal) if taken.

    Returns the open file (keep it referenced). ``refusal`` may contain ``{pid}``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        raise SystemExit(refusal.format(pid=handle.read().strip() or "?")) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
