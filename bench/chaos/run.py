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
import time
from pathlib import Path

from actors.balances.testing import Balances
from actors.runtime.testing import HarnessError, wait_until
from bench.chaos import killer
from bench.chaos.answers import Answers
from bench.chaos.checks import PLANTS, Finding
from bench.chaos.checks.balances import check_balances
from bench.chaos.checks.gophermart import check_gophermart
from bench.chaos.checks.grades import check_grades
from bench.chaos.checks.segments import check_segments
from bench.chaos.manager import RESTART_SEC, Manager
from bench.chaos.report import outages, render
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
    parser.add_argument(
        "--plant", choices=PLANTS, default="", help="a fault for the checks to catch"
    )
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
        self.unrecovered: list[killer.Kill] = []
        """Kills after which a service answered no 2xx within RECOVERY_TIMEOUT_S."""
        self.replicas = ["replica1", "replica2"]

    def start(self) -> None:
        self.topology.start()
        services = self.topology.services
        seed = self.seed
        self.grades = GradesWorkload(self.answers, self.topology.replicas, seed)
        self.gophermart = GophermartWorkload(
            self.answers, services["gophermart"].base, services["accrual"].base, seed
        )
        self.segments = SegmentsWorkload(self.answers, services["segments"].base, seed)
        self.balances = BalancesWorkload(self.answers, services["balances"].base, seed)
        self.clients = [self.gophermart, self.segments, self.balances]
        self.grades.start()
        for client in self.clients:
            client.start()
        self.manager = Manager(self.topology.top)
        self.manager.start()
        begun = time.monotonic()
        for service in ("postgres", "grades"):  # every target answered 2xx once
            warm = killer.Kill(begun, killer.Victim(0, service, "start", "bus"))
            if not self._wait_recovered(warm, WARM_UP_TIMEOUT_S):
                raise HarnessError(f"{service}'s clients got no 2xx in {WARM_UP_TIMEOUT_S:.0f} s")

    def fire(self) -> None:
        started = time.monotonic()
        deadline = started + self.args.minutes * 60
        while True:
            pause = self.rng.uniform(0.5, 1.5) * self.args.kill_every
            if time.monotonic() + pause >= deadline:
                break
            time.sleep(pause)  # NOTE: the pace of the kills, not a wait for a condition
            found = killer.victims(self.topology.top)
            done = killer.kill(self._named(killer.pick(found, self.rng))) if found else None
            if done is None:
                continue
            self.kills.append(done)
            victim = done.victim
            recovered = self._wait_recovered(done)
            print(
                f"  {time.monotonic() - started:6.1f} s  killed {victim.kind} "
                f"({victim.instance}, pid {victim.pid})" + ("" if recovered else ": NO RECOVERY"),
                flush=True,
            )

    def _named(self, victim: killer.Victim) -> killer.Victim:
        """A NATS node that leads grades' stream right now is reported as the leader."""
        nats = self.topology.nats
        if victim.kind != killer.NATS_NODE or nats is None:
            return victim
        leader = nats.current_stream_leader()
        if leader is not None and leader.process is not None and leader.process.pid == victim.pid:
            return victim._replace(kind=killer.NATS_STREAM_LEADER)
        return victim

    def _wait_recovered(self, kill: killer.Kill, timeout_s: float = RECOVERY_TIMEOUT_S) -> bool:
        """Wait until every target the kill affects answered 2xx to a request sent after it."""
        targets = killer.affected_targets(kill.victim, self.replicas)
        try:
            wait_until(
                lambda: all(self.answers.ok_since(s, t, kill.at) for s, t in targets),
                timeout_s,
                f"a 2xx after killing {kill.victim.kind}",
            )
            return True
        except HarnessError:
            self.unrecovered.append(kill)
            return False

    def _balances(self) -> Balances:
        service = self.topology.services["balances"]
        assert isinstance(service, Balances)
        return service

    def finish(self) -> tuple[str, bool]:
        """Stop the clients, wait for every service, check (the service manager still
        restarts what dies meanwhile, as it would), then stop the manager."""
        self.grades.stop()
        for client in self.clients:
            client.stop()
        self.topology.wait_all_ready(RECOVERY_TIMEOUT_S)
        try:
            return self._check()
        finally:
            self.manager.stop()

    def _check(self) -> tuple[str, bool]:
        services, plant = self.topology.services, self.args.plant
        errors = [c for c in self.clients if c.error is not None]
        findings = [
            Finding(
                "all",
                not errors,
                "workloads ran to the end" + "".join(f"; {c.service}: {c.error!r}" for c in errors),
            ),
            Finding(
                "all",
                not self.unrecovered,
                f"every service answered 2xx again after every kill ({len(self.kills)} kills)"
                + "".join(f"; not after {k.victim.kind}" for k in self.unrecovered),
            ),
            *check_grades(self.topology.replicas, self.grades, plant),
            *check_gophermart(services["gophermart"].base, self.gophermart, plant),
            *check_balances(self._balances(), self.balances, self.kills, plant),
            *check_segments(services["segments"].base, self.segments),
        ]
        restarts = ", ".join(f"{k} x{v}" for k, v in sorted(self.manager.restarts.items()) if v)
        args = self.args
        header = [
            f"chaos: {args.minutes:g} min, seed {self.seed}, bus {args.bus}, "
            f"a kill every ~{args.kill_every:g} s" + (f", planted {plant}" if plant else ""),
            "restarted by the service manager (systemd Restart=always, "
            f"RestartSec={RESTART_SEC * 1000:.0f}ms, KillMode=process): {restarts or 'none'}",
        ]
        return render(
            header,
            list(self.answers.items),
            outages(self.kills, self.answers.items, self.replicas),
            findings,
        )


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    directory = Path(tempfile.mkdtemp(prefix="chaos-"))
    run = Run(args, directory)
    print(
        f"chaos: seed {run.seed} (CHAOS_SEED={run.seed} replays the kills), in {directory}",
        flush=True,
    )
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
