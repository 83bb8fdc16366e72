"""`--profile`: py-spy samples our processes while ours is measured; a flame graph per role.

    profile.start(Path("bench/results/gophermart-<time>-profile"))   # run_service_bench
    with profile.recording("balance", groups):                       # bench.common.side
        wrk.run(...)

While a run labelled ``label`` is measured (only its first round), one
``py-spy record --nonblocking --function --format raw`` per Python process of
the CPU meter's groups samples it (PostgreSQL is not Python; its group is
left out). When the run ends the collapsed stacks are merged by role (the HTTP
workers of one server are one role; every other process is its own, named by
its title) and written next to the results JSON as ``<label>-<role>.svg`` (a
flame graph, bench.common.flame) and ``<label>-<role>.txt`` (the collapsed
stacks), and the top frames by self and by total time are printed and kept in
``top.json``. Sampling costs CPU on the same cores: a profiled run's rates are
lower; read its pictures, not its ratios.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from bench.common.flame import render_svg

__all__ = ["start", "recording", "top_frames", "RATE_HZ", "TOP"]

RATE_HZ = 200
"""Samples per second per process: 1 in ~5 ms is enough for a 3-10 s run."""
TOP = 15
BOOTSTRAP_PERCENT = 90.0
"""`main` leaves out of "total" the frames on more stacks than this: the start-up chain."""
PRINT_MIN_SAMPLES = 50
"""A role with fewer samples (a supervisor, gunicorn's master) is written, not printed."""
STOP_TIMEOUT_S = 30.0
NOT_PYTHON = frozenset({"pg", "load"})

_out_dir: Path | None = None
_done: set[str] = set()
_top: dict[str, dict] = {}


def start(out_dir: Path) -> None:
    """Turn profiling on for this bench run, writing into ``out_dir``."""
    global _out_dir
    _out_dir = out_dir
    out_dir.mkdir(parents=True, exist_ok=True)


def _py_spy() -> str:
    return str(Path(sys.executable).with_name("py-spy"))


def _title(pid: int) -> str:
    try:
        return " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def _role(group: str, title: str) -> str:
    """HTTP workers of a group are one role; any other process is named by its title."""
    if "worker [" in title or not title or group == "http":
        return group
    words = [w for w in title.lower().split() if not re.search(r"\d[.:]\d|://", w)]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words)).strip("-")[:60] or group


@contextmanager
def recording(label: str, groups: dict[str, Callable[[], list[int]]]) -> Iterator[None]:
    """Sample the groups' Python processes while the block runs (the first time only)."""
    if _out_dir is None or label in _done:
        yield
        return
    _done.add(label)
    raw_dir = _out_dir / "raw"
    raw_dir.mkdir(exist_ok=True)
    spies: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
    for group, pids in groups.items():
        if group in NOT_PYTHON:
            continue
        for pid in pids():
            role = _role(group, _title(pid))
            path = raw_dir / f"{label}-{role}-{pid}.txt"
            argv = [_py_spy(), "record", "--pid", str(pid), "--rate", str(RATE_HZ)]
            argv += ["--nonblocking", "--function", "--format", "raw", "--output", str(path)]
            spy = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            spies.append((role, path, spy))
    try:
        yield
    finally:
        for _, _, spy in spies:
            spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        for _, _, spy in spies:
            try:
                spy.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                spy.kill()
                spy.wait()
        _write(label, spies)


def _read_collapsed(path: Path) -> Counter[str]:
    stacks: Counter[str] = Counter()
    if not path.exists():
        return stacks
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks[stack] += int(count)
    return stacks


def top_frames(stacks: Counter[str], limit: int = TOP) -> dict[str, list[tuple[str, float]]]:
    """The frames with the most samples, as percent of all: where the frame is the leaf
    ("self") and anywhere on the stack ("total", each frame once per stack)."""
    total = sum(stacks.values()) or 1
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = stack.split(";")
        own[frames[-1]] += count
        for frame in set(frames[1:]):  # the first is the thread: in every stack
            anywhere[frame] += count

    def percent(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(frame, round(100 * n / total, 1)) for frame, n in counter.most_common(limit)]

    return {"samples": [("all", float(total))], "self": percent(own), "total": percent(anywhere)}


def _write(label: str, spies: list[tuple[str, Path, subprocess.Popen[bytes]]]) -> None:
    assert _out_dir is not None
    by_role: dict[str, Counter[str]] = {}
    for role, path, _ in spies:
        by_role.setdefault(role, Counter()).update(_read_collapsed(path))
    for role, stacks in sorted(by_role.items()):
        if not stacks:
            continue
        name = f"{label}-{role}"
        (_out_dir / f"{name}.txt").write_text(
            "".join(f"{stack} {count}\n" for stack, count in stacks.most_common())
        )
        (_out_dir / f"{name}.svg").write_text(render_svg(stacks, f"{label}: {role}"))
        top = _top[name] = top_frames(stacks)
        samples = int(top["samples"][0][1])
        print(f"  profile {name}: {samples} samples, {name}.svg", flush=True)
        if samples < PRINT_MIN_SAMPLES:
            continue
        for frame, percent in top["self"][:8]:
            print(f"    self {percent:5.1f}%  {frame}", flush=True)
    (_out_dir / "top.json").write_text(json.dumps(_top, indent=1))


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.common.profile DIR [NAME...]`: the top frames of a profile's roles."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m bench.common.profile <profile dir> [<measurement-role> ...]")
        return 2
    folder = Path(args[0])
    names = args[1:] or sorted(p.stem for p in folder.glob("*.txt"))
    for name in names:
        top = top_frames(_read_collapsed(folder / f"{name}.txt"), limit=60)
        print(f"{name}: {int(top['samples'][0][1])} samples")
        for frame, percent in top["self"][:TOP]:
            print(f"  self  {percent:5.1f}%  {frame}")
        # NOTE: frames on (nearly) every stack are the process's start-up chain
        inner = [(f, p) for f, p in top["total"] if p < BOOTSTRAP_PERCENT]
        for frame, percent in inner[:TOP]:
            print(f"  total {percent:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
