"""The one process harness of tests and benchmarks: real processes on free ports.

Every process runs in its own session with its output in a log file; every
wait has a monotonic deadline; stopping is SIGTERM, a deadline, then SIGKILL
of the whole process group and every descendant. ``ProcGroup`` owns a
directory and the processes started in it, and stops them in reverse order.

Service launchers (``actors/<service>/testing.py``) subclass ``Proc``; pytest
conftests wrap them in fixtures and benches use them directly. A failed wait
raises ``HarnessError``, an AssertionError, so pytest shows it as a failure
with the process's output.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

import psutil

if TYPE_CHECKING:
    import requests

__all__ = [
    "HarnessError",
    "free_port",
    "port_open",
    "wait_until",
    "Proc",
    "ProcGroup",
    "HttpService",
    "ROOT",
    "START_TIMEOUT_S",
    "STOP_TIMEOUT_S",
    "REQUEST_TIMEOUT_S",
]

ROOT = Path(__file__).resolve().parents[2]
"""The checkout: processes start here so relative paths mean what they say."""
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 8.0
REQUEST_TIMEOUT_S = 10.0
READY_PROBE_TIMEOUT_S = 2.0

T = TypeVar("T")


class HarnessError(AssertionError):
    """A process did not do what the test or benchmark needs; the message shows its output."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.05
) -> T:
    """Poll predicate until it returns a truthy value (returned); HarnessError at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


class Proc:
    """One child process (and its descendants) with its output in ``<log_dir>/<name>.log``."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path):
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes] | None = None
        self.ok_codes: set[int | None] = {0}

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.log_path, "ab")  # noqa: SIM115 - closed when it stops
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def output(self, tail_lines: int = 0) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-tail_lines:]) if tail_lines else text

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def started(self) -> subprocess.Popen[bytes]:
        """The process; HarnessError if ``start()`` was never called."""
        if self.process is None:
            raise HarnessError(f"{self.name} was never started")
        return self.process

    def descendants(self) -> list[psutil.Process]:
        assert self.process is not None, "not started"
        try:
            return psutil.Process(self.started().pid).children(recursive=True)
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

    def titled(self, title: str, other_than: int = 0) -> psutil.Process | None:
        """The one descendant whose title contains ``title`` (pid not ``other_than``);
        None while there is none, or more than one (a restart under way)."""
        found = [p for p in self.find(title) if p.pid != other_than]
        return found[0] if len(found) == 1 else None

    def hang_child(
        self, name: str, title: str, timeout_s: float = START_TIMEOUT_S
    ) -> psutil.Process:
        """SIGSTOP the supervised child ``name`` (process title ``title``) once its
        supervisor said it answers its liveness probe, so the probe's silence is the
        stop's; returns the stopped process (alive, doing nothing, as if deadlocked)."""
        stopped = wait_until(lambda: self.titled(title), timeout_s, f"{self.name}'s {title!r}")
        self.wait_output(f"{name} (pid {stopped.pid}) answers its liveness probe", timeout_s)
        stopped.send_signal(signal.SIGSTOP)
        return stopped

    def wait_hung_child_replaced(
        self, name: str, title: str, stopped: psutil.Process, timeout_s: float = START_TIMEOUT_S
    ) -> psutil.Process:
        """Wait until the supervisor said it killed the hung child ``name`` (``stopped``)
        and a new one answers its liveness probe; returns the new process."""
        self.wait_output(f"{name} (pid {stopped.pid}) answered no ping for", timeout_s)
        new = wait_until(
            lambda: self.titled(title, other_than=stopped.pid), timeout_s, f"a new {title!r}"
        )
        self.wait_output(f"{name} (pid {new.pid}) answers its liveness probe", timeout_s)
        return new

    def fail(self, why: str) -> HarnessError:
        return HarnessError(
            f"{self.name}: {why}\n--- last lines of {self.log_path.name} ---\n{self.output(60)}"
        )

    def wait_output(self, text: str, timeout_s: float = START_TIMEOUT_S) -> None:
        """Wait until the process has printed ``text``; fail if it exits first."""
        wait_until(
            lambda: text in self.output() or not self.running(),
            timeout_s,
            f"{self.name} to print {text!r}",
        )
        if text not in self.output():
            raise self.fail(f"exited before printing {text!r}")

    def kill9(self) -> None:
        """SIGKILL the process and everything it started at once, as a crash would."""
        if self.process is not None:
            self._kill_all(self.descendants())

    def _kill_all(self, victims: list[psutil.Process]) -> None:
        process = self.started()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for victim in victims:
            try:
                victim.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=STOP_TIMEOUT_S)
        if process.poll() is None:
            process.wait(timeout=STOP_TIMEOUT_S)
        if self._out is not None:
            self._out.close()
            self._out = None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM, wait, then SIGKILL the group and every descendant.

        Returns:
            The exit code, or None if it ignored SIGTERM and had to be killed.
        """
        if self.process is None:
            return 0
        code = self.process.poll()
        victims = self.descendants()
        if code is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                code = self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                code = None
        self._kill_all(victims)  # whatever is left (the group, orphans that left it)
        return code


class HttpService(Proc):
    """A service's console command on a free port of `host`, with a requests session.

    Its ``argv`` and ``env`` come from the service's launcher; this adds the port,
    ``url()``, ``get/post/delete`` and readiness by ``GET /readyz``.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        log_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
    ):
        self.port = port or free_port()
        self.host = host
        self.base = f"http://{host}:{self.port}"
        import requests  # NOTE: the test extra's; the runtime itself does not need it

        self._requests = requests
        self.session = requests.Session()
        super().__init__(name, argv, {**env, "RUN_ADDRESS": f"{host}:{self.port}"}, log_dir)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url(path), timeout=REQUEST_TIMEOUT_S, **kwargs)

    def post(self, path: str, document: Any = None, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url(path), json=document, timeout=REQUEST_TIMEOUT_S, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.delete(self.url(path), timeout=REQUEST_TIMEOUT_S, **kwargs)

    def ready(self) -> bool:
        try:
            return (
                self._requests.get(self.url("/readyz"), timeout=READY_PROBE_TIMEOUT_S).status_code
                == 200
            )
        except self._requests.RequestException:
            return False

    def ready_lines(self, program: str) -> list[str]:
        """The lines that say ``<program> is ready on <this instance's URL>``."""
        text = f"{program} is ready on {self.base}"
        return [line for line in self.output().splitlines() if text in line]

    def wait_ready_line(self, program: str, timeout_s: float = START_TIMEOUT_S) -> list[str]:
        """Wait for the service's ready line (see actors.runtime.ready); the lines said."""
        wait_until(
            lambda: self.ready_lines(program) or not self.running(),
            timeout_s,
            f"{self.name} to say it is ready",
        )
        if not self.running():
            raise self.fail("exited before it said it was ready")
        return self.ready_lines(program)

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Seconds until GET /readyz answered 200; fails with the output if it exits."""
        started = time.monotonic()
        wait_until(
            lambda: self.ready() or not self.running(), timeout_s, f"{self.name} to be ready"
        )
        if not self.running():
            raise self.fail(f"exited with {self.started().returncode} before it was ready")
        return time.monotonic() - started


ProcT = TypeVar("ProcT", bound=Proc)


class ProcGroup:
    """The processes of one test or measurement, stopped in reverse order at the end."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[Proc] = []

    def add(self, proc: ProcT) -> ProcT:
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc) -> str | None:
        """Stop one process; a problem report if it was running and did not exit cleanly."""
        if proc in self.procs:
            self.procs.remove(proc)
        was_running = proc.running()
        code = proc.stop()
        if was_running and code not in proc.ok_codes:
            how = "ignored SIGTERM and was killed" if code is None else f"exited {code}"
            return f"{proc.name} {how}:\n{proc.output(60)}"
        return None

    def stop_all(self) -> list[str]:
        """Stop everything; the problems found (empty when all stopped cleanly)."""
        problems = []
        for proc in list(reversed(self.procs)):
            problem = self.stop(proc)
            if problem:
                problems.append(problem)
        return problems
