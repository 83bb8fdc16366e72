"""`make chaos`: start everything, load it, kill -9 a random process every few
seconds for CHAOS_MINUTES, then check every service's invariants and print one
report. Exit status 1 when an invariant broke.

    python -m bench.chaos.run --minutes 5 [--seed N] [--bus jetstream] [--plant KIND]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from actors.runtime.testing import wait_until
from bench.chaos import killer
from bench.chaos.answers import Answers
from bench.chaos.checks import PLANTS, Finding
from bench.chaos.checks.balances import check_balances
from bench.chaos.checks.gophermart import check_gophermart
from bench.chaos.checks.grades import check_grades
from bench.chaos.checks.segments import check_segments
from bench.chaos.manager import RESTART_SEC, Manager
from bench.chaos.report import outages, recovered, render
from bench.chaos.topology import Topology
from bench.chaos.workloads.balances import BalancesWorkload
from bench.chaos.workloads.gophermart import GophermartWorkload
from bench.chaos.workloads.grades import GradesWorkload
from bench.chaos.workloads.segments import SegmentsWorkload

RECOVERY_TIMEOUT_S = 60.0
"""A kill whose services answer no 2xx for this long fails the run."""
WARM_UP_TIMEOUT_S = 60.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds, on average")
    parser.add_argument("--bus", choices=("builtin", "jetstream"), default="builtin")
    parser.add_argument("--plant", choices=PLANTS, default="", help="a fault for the checks to catch")
    parser.add_argument("--keep", action="store_true", help="keep the directory (logs) afterwards")
    return parser.parse_args(argv)


class Run:
    """One chaos run: its processes, clients, kills and answers."""

    def __init__(self, args: argparse.Namespace, directory: Path):
        self.args = args
        self.seed = args.seed if args.seed is not None else int(time.time())
        self.rng = random.Random(self.seed)
        self.topology = Topology(directory, bus=args.bus)
        self.answers = Answers()
        self.kills: list[killer.Kill] = []
        self.replicas = ["replica1", "replica2"]

    def start(self) -> None:
        self.topology.start()
        services = self.topology.services
        seed = self.seed
        self.grades = GradesWorkload(self.answers, self.topology.replicas, seed)
        self.gophermart = GophermartWorkload(self.answers, services["gophermart"].base, services["accrual"].base, seed)
        self.segments = SegmentsWorkload(self.answers, services["segments"].base, seed)
        self.balances = BalancesWorkload(self.answers, services["balances"].base, seed)
        self.clients = [self.gophermart, self.segments, self.balances]
        self.grades.start()
        for client in self.clients:
            client.start()
        self.manager = Manager(self.topology.top)
        self.manager.start()
        warm = killer.Kill(time.monotonic(), killer.Victim(0, "postgres", "start", "postgres"))
        for target in (warm, warm._replace(victim=killer.Victim(0, "grades", "start", "bus"))):
            wait_until(lambda t=target: recovered(t, self.answers.items, self.replicas), WARM_UP_TIMEOUT_S, "every service to answer 2xx")

    def fire(self) -> None:
        deadline = time.monotonic() + self.args.minutes * 60
        stop = threading.Event()
        while time.monotonic() < deadline:
            if stop.wait(min(self.rng.uniform(0.5, 1.5) * self.args.kill_every, max(0.0, deadline - time.monotonic()))):
                break
            if time.monotonic() >= deadline:
                break
            found = killer.victims(self.topology.top)
            done = killer.kill(killer.pick(found, self.rng)) if found else None
            if done is None:
                continue
            self.kills.append(done)
            wait_until(lambda: recovered(done, self.answers.items, self.replicas), RECOVERY_TIMEOUT_S, f"a 2xx after killing {done.victim.kind}")
            print(f"  {time.monotonic() - deadline + self.args.minutes * 60:6.1f} s  killed {done.victim.kind} ({done.victim.instance}, pid {done.victim.pid})", flush=True)

    def finish(self) -> tuple[str, bool]:
        self.manager.stop()
        self.grades.stop()
        for client in self.clients:
            client.stop()
        services, plant = self.topology.services, self.args.plant
        errors = [c for c in self.clients if c.error is not None]
        findings = [
            Finding("all", not errors, "workloads ran to the end" + "".join(f"; {c.service}: {c.error!r}" for c in errors)),
            *check_grades(self.topology.replicas, self.grades, plant),
            *check_gophermart(services["gophermart"].base, self.gophermart, plant),
            *check_balances(services["balances"], self.balances, self.kills, plant),  # type: ignore[arg-type]
            *check_segments(services["segments"].base, self.segments),
        ]
        restarts = ", ".join(f"{k} x{v}" for k, v in sorted(self.manager.restarts.items()) if v)
        header = [
            f"chaos: {self.args.minutes:g} min, seed {self.seed}, bus {self.args.bus}, a kill every ~{self.args.kill_every:g} s"
            + (f", planted {plant}" if plant else ""),
            f"restarts by the service manager (systemd Restart=always, RestartSec={RESTART_SEC * 1000:.0f}ms, KillMode=process): {restarts or 'none'}",
        ]
        return render(header, list(self.answers.items), outages(self.kills, self.answers.items, self.replicas), findings)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    directory = Path(tempfile.mkdtemp(prefix="chaos-"))
    run = Run(args, directory)
    print(f"chaos: seed {run.seed} (CHAOS_SEED={run.seed} replays the kills), in {directory}", flush=True)
    try:
        run.start()
        run.fire()
        text, ok = run.finish()
    finally:
        run.topology.stop_all()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    print(text, flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
