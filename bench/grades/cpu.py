"""CPU time per durable set, process by process: where a set's cost goes.

Two replicas and the bus; wrk's set.lua against replica 1's setter at CONNECTIONS
(one request in flight each, as in measurement 1b); each process's user+system CPU
time before and after, divided by the sets wrk saw answered.
CPU time, unlike throughput, hardly moves when other work shares the machine, so
this is the figure to compare across changes of the set path (issue 14).

    .venv/bin/python -m bench.run grades --only cpu
"""

from __future__ import annotations

import psutil

from bench.grades import wrk
from bench.grades.stack import BenchError, Stack
from bench.report import Row

CONNECTIONS = 64
"""As many sets in flight as measurement 1b's busiest run: the storage actor batches them."""


def _cpu_by_role(procs: list) -> dict[str, float]:
    """Seconds of CPU per role, keyed by process title (e.g. 'grades: storage replica=1')."""
    seconds: dict[str, float] = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            title = " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            continue
        # NOTE: split/join: gunicorn pads a worker's title with spaces to its argv's length
        title = " ".join(title.split())
        role = title.removeprefix("gunicorn: ").replace("[", "").replace("]", "")
        # e.g. "grades: storage replica=1", "worker grades: http replica=1"
        seconds[role] = seconds.get(role, 0.0) + times.user + times.system
    return seconds


def measure(ctx) -> dict:
    with Stack("cpu") as stack:
        bus = stack.bus()
        one = stack.replica(1, bus)
        two = stack.replica(2, bus, next_url=one.get_base)
        procs = [psutil.Process(bus.process.pid)] + one.descendants() + two.descendants()
        before = _cpu_by_role(procs)
        result = wrk.run(f"{one.set_base}/set", wrk.SET_LUA, CONNECTIONS, ctx.duration)
        if result.non2xx or result.sockerr:
            raise BenchError(f"cpu: {result.non2xx} non-2xx, {result.sockerr} socket errors")
        after = _cpu_by_role(procs)
    sets = result.requests
    per_set = {role: (after[role] - before.get(role, 0.0)) * 1e6 / sets for role in after}
    total = sum(per_set.values())
    rows = [
        Row("7", f"  {role}", f"{us:,.0f} us/set")
        for role, us in sorted(per_set.items(), key=lambda item: -item[1])
        if us >= 1
    ]
    rows.insert(
        0,
        Row(
            "7",
            f"CPU per durable set, all processes ({sets:,} sets, "
            f"{result.rps:,.0f}/s at c={CONNECTIONS})",
            f"{total:,.0f} us/set",
        ),
    )
    return {
        "data": {"sets": sets, "rps": result.rps, "us_per_set": per_set, "total_us": total},
        "rows": rows,
        "failures": [],
        "notes": [],
    }
