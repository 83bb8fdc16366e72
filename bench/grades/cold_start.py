"""Measurement 9: how soon a fresh two-replica cluster takes writes on both replicas.

As ``make run`` starts the Procfile: the bus and two replicas (default HTTP workers,
each replica's NEXT_REPLICA_URL naming the other) launched at once, then a POST /set
probed on each replica until it answers 200. The figure is the time from the launch
to the second replica's first 200, over a few fresh clusters (each in its own empty
data directory); the table gives the median and the slowest. Beside it, the CPU
seconds all of the cluster's processes spent until then: on a shared machine the
wall time swings with others' load, the CPU much less.

    .venv/bin/python -m bench.run grades --only start
"""

from __future__ import annotations

import statistics

import psutil

from actors.grades.testing import seconds_until_sets_accepted
from bench.grades.stack import BenchError, Stack
from bench.report import Row, verdict

TARGET_S = 2.0
"""Issue 18: both replicas accept a set within 2 s of the launch."""
RUNS, QUICK_RUNS = 5, 3
GIVE_UP_S = 30.0


def _cpu_s(procs) -> float:
    """User+system CPU seconds of the processes and all their descendants, now."""
    total = 0.0
    for proc in procs:
        try:
            root = psutil.Process(proc.started().pid)
            for each in [root, *root.children(recursive=True)]:
                times = each.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _one_start(index: int) -> tuple[dict[int, float], float]:
    with Stack(f"start{index}") as stack:  # a Stack runs the default HTTP workers
        bus, one, two, launched = stack.launch_fresh()
        accepted = seconds_until_sets_accepted([one, two], launched, GIVE_UP_S)
        cpu_s = _cpu_s([bus, one, two])
        if len(accepted) < 2:
            stack.keep_logs = True
            raise BenchError(f"not both taking writes after {GIVE_UP_S:.0f} s: {accepted}")
    return accepted, cpu_s


def measure(ctx) -> dict:
    runs = QUICK_RUNS if ctx.duration < 10 else RUNS
    both, each, cpu = [], [], []
    for index in range(runs):
        accepted, cpu_s = _one_start(index)
        both.append(max(accepted.values()))
        each.append({str(k): round(v, 3) for k, v in sorted(accepted.items())})
        cpu.append(cpu_s)
        ctx.log(
            f"run {index + 1}: replica 1 {accepted[1]:.2f} s, replica 2 {accepted[2]:.2f} s, "
            f"{cpu_s:.2f} CPU seconds"
        )
    median, slowest = statistics.median(both), max(both)
    rows = [
        Row(
            "9",
            f"fresh two-replica cluster accepts sets on both: seconds (median of {runs})",
            f"{median:.2f}",
            "",
            "",
            f"<= {TARGET_S:g} s",
            verdict(median <= TARGET_S),
        ),
        Row("9", "  slowest start", f"{slowest:.2f}"),
        Row("9", "  CPU seconds of all its processes until then", f"{statistics.median(cpu):.2f}"),
    ]
    data = {
        "runs": each,
        "both_s": [round(s, 3) for s in both],
        "median_s": median,
        "cpu_s": [round(s, 3) for s in cpu],
    }
    return {"data": data, "rows": rows, "failures": [], "notes": []}
