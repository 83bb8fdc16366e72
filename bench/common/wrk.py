"""wrk with a Lua script: one run of fixed duration, or one in the background.

A script ends with ``done = bench_done`` (``lua/result.lua``, or any hook printing the
same line), which prints one line::

    RESULT rps=... p50_us=... p99_us=... requests=... non2xx=... sockerr=...

``run`` waits for a run of fixed duration; ``Background`` starts one whose ``stop()``
interrupts wrk (SIGINT: wrk stops and still prints its summary). Every run has
``BENCH_COMMON_LUA`` (this package's lua/ directory) in its environment.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.common.errors import BenchError

__all__ = ["COMMON_LUA", "GRACE_S", "Background", "WrkResult", "parse", "run"]

COMMON_LUA = Path(__file__).resolve().parent / "lua"
RESULT = re.compile(r"^RESULT (.*)$", re.MULTILINE)
GRACE_S = 20.0  # beyond the run's duration: thread start-up (pools are built), exit


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    sockerr: int
    connections: int
    duration_s: float

    def as_dict(self) -> dict:
        return asdict(self)


def _argv(
    url: str, script: Path, connections: int, threads: int, duration_s: float, timeout_s: float
) -> list[str]:
    return [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration_s:g}s",
        "--timeout",
        f"{timeout_s:g}s",
        "-s",
        str(script),
        url,
    ]


def _env(extra: dict | None) -> dict:
    return {
        **os.environ,
        "BENCH_COMMON_LUA": str(COMMON_LUA),
        **{k: str(v) for k, v in (extra or {}).items()},
    }


def parse(output: str, connections: int, duration_s: float) -> WrkResult:
    match = RESULT.search(output)
    if not match:
        raise BenchError(f"wrk printed no RESULT line:\n{output[-2000:]}")
    fields = dict(pair.split("=", 1) for pair in match.group(1).split())
    return WrkResult(
        rps=float(fields["rps"]),
        p50_ms=int(fields["p50_us"]) / 1000,
        p99_ms=int(fields["p99_us"]) / 1000,
        requests=int(fields["requests"]),
        non2xx=int(fields["non2xx"]),
        sockerr=int(fields["sockerr"]),
        connections=connections,
        duration_s=duration_s,
    )


def run(
    url: str,
    script: Path,
    connections: int,
    duration_s: float,
    threads: int = 2,
    env: dict | None = None,
    timeout_s: float = 5.0,
) -> WrkResult:
    """One wrk run to its end; BenchError if it fails or overruns its deadline."""
    argv = _argv(url, script, connections, threads, duration_s, timeout_s)
    try:
        done = subprocess.run(
            argv,
            check=False,
            env=_env(env),
            capture_output=True,
            text=True,
            timeout=duration_s + GRACE_S,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"wrk overran {duration_s + GRACE_S:.0f} s: {' '.join(argv)}") from None
    if done.returncode != 0:
        raise BenchError(f"wrk exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return parse(done.stdout, connections, duration_s)


class Background:
    """A wrk run in the background; stop() ends it early and returns its result."""

    def __init__(
        self,
        url: str,
        script: Path,
        connections: int,
        max_duration_s: float,
        threads: int = 2,
        env: dict | None = None,
        timeout_s: float = 5.0,
    ):
        self.connections = connections
        self.max_duration_s = max_duration_s
        self.process = subprocess.Popen(
            _argv(url, script, connections, threads, max_duration_s, timeout_s),
            env=_env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, elapsed_s: float) -> WrkResult:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            out, _err = self.process.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise BenchError("wrk did not stop on SIGINT") from None
        # after SIGINT wrk divides by the time it really ran; keep what it printed
        return parse(out, self.connections, elapsed_s)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()
