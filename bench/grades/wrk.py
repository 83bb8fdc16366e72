"""grades' wrk runs: the peers' Lua scripts on top of bench.common.wrk.

The peers' scripts (set.lua, get.lua) end with common.lua's done() hook, which
prints the RESULT line bench.common.wrk parses; they find their siblings through
``WRK_SCRIPTS``, which every run here sets. ``run`` waits for a run of fixed
duration; ``Background`` returns a handle whose ``stop()`` interrupts wrk.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import wrk as _wrk
from bench.common.wrk import GRACE_S, WrkResult, parse
from bench.grades.stack import PEERS_DIR

__all__ = [
    "GET_LUA",
    "GRACE_S",
    "PACED_SET_LUA",
    "SET_LUA",
    "Background",
    "WrkResult",
    "parse",
    "run",
]

SCRIPTS = PEERS_DIR / "wrk"
SET_LUA = SCRIPTS / "set.lua"
GET_LUA = SCRIPTS / "get.lua"
PACED_SET_LUA = Path(__file__).resolve().parent / "lua" / "paced_set.lua"


def _env(extra: dict | None) -> dict:
    return {"WRK_SCRIPTS": str(SCRIPTS), **(extra or {})}


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
    return _wrk.run(url, script, connections, duration_s, threads, _env(env), timeout_s)


class Background(_wrk.Background):
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
        super().__init__(url, script, connections, max_duration_s, threads, _env(env), timeout_s)
