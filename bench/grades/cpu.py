"""CPU time per durable set, process by process: where a set's cost goes.

Two replicas and the bus; N sets pipelined into replica 1's setter over a few
keep-alive connections; each process's user+system CPU time before and after.
CPU time, unlike throughput, hardly moves when other work shares the machine, so
this is the figure to compare across changes of the set path (issue 14).

    .venv/bin/python -m bench.run grades --only cpu
"""

from __future__ import annotations

import threading

import psutil

from bench.grades import httppipe
from bench.grades.stack import BenchError, Stack
from bench.report import Row

SETS = 40_000
CONNECTIONS = 4
WINDOW = 64
"""Requests in flight per connection: enough to keep every process busy and batching."""


def _cpu_by_role(procs: list) -> dict[str, float]:
    """Seconds of CPU per role, keyed by process title (e.g. 'grades: storage replica=1')."""
    seconds: dict[str, float] = {}
    for proc in procs:
        try:
            times = proc.cpu_times()
            title = " ".join(proc.cmdline())
        except psutil.NoSuchProcess:
            continue
        role = title.removeprefix("gunicorn: ").replace("[", "").replace("]", "")
        # e.g. "grades: storage replica=1", "worker grades: setter replica=1"
        seconds[role] = seconds.get(role, 0.0) + times.user + times.system
    return seconds


def measure(ctx) -> dict:
    with Stack("cpu") as stack:
        bus = stack.bus()
        one = stack.replica(1, bus)
        two = stack.replica(2, bus, next_url=one.get_base)
        procs = [psutil.Process(bus.process.pid)] + one.descendants() + two.descendants()
        before = _cpu_by_role(procs)
        per_connection = (ctx.rows and min(SETS, ctx.rows) or SETS) // CONNECTIONS
        errors: list[str] = []

        def load(n: int) -> None:
            try:
                httppipe.prefill(one.setter_port, (f"cpu-{n}-{i}" for i in range(per_connection)),
                                 window=WINDOW)
            except BenchError as exc:
                errors.append(str(exc))

        threads = [threading.Thread(target=load, args=(n,)) for n in range(CONNECTIONS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        if errors:
            raise BenchError(f"cpu: {errors[0]}")
        after = _cpu_by_role(procs)
    sets = per_connection * CONNECTIONS
    per_set = {role: (after[role] - before.get(role, 0.0)) * 1e6 / sets for role in after}
    total = sum(per_set.values())
    rows = [Row("7", f"  {role}", f"{us:,.0f} us/set")
            for role, us in sorted(per_set.items(), key=lambda item: -item[1]) if us >= 1]
    rows.insert(0, Row("7", f"CPU per durable set, all processes ({sets:,} sets)",
                       f"{total:,.0f} us/set"))
    return {"data": {"sets": sets, "us_per_set": per_set, "total_us": total},
            "rows": rows, "failures": [], "notes": []}
