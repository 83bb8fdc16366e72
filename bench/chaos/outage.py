"""The outage after SIGKILLs of one kind of process, kill by kill.

`make chaos` kills at random across every service; this kills only the given kinds, N
times each, under the same workloads, service manager and outage measure
(bench.chaos.report), with only the services those kinds belong to running (grades: its
bus and two replicas; a PostgreSQL service: PostgreSQL, the service and what it needs),
so a change to one kind's recovery is measured quickly and side by side with another:

    python -m bench.chaos.outage --kind 'grades: storage' --kind 'grades: supervisor' --kills 5
    python -m bench.chaos.outage --kind 'gophermart: supervisor' --kind 'segments: supervisor'
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from actors.runtime.supervisor import QUICK_DEATH_S
from actors.runtime.testing import HarnessError, wait_until
from bench.chaos import killer
from bench.chaos.answers import Answers
from bench.chaos.manager import Manager
from bench.chaos.report import outages
from bench.chaos.topology import SERVICES, Topology
from bench.chaos.workloads.balances import BalancesWorkload
from bench.chaos.workloads.base import Workload
from bench.chaos.workloads.gophermart import GophermartWorkload
from bench.chaos.workloads.grades import GradesWorkload
from bench.chaos.workloads.segments import SegmentsWorkload

__all__ = ["main"]

RECOVERY_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 60.0
VICTIM_REPLICA = "replica2"
"""grades' kinds are killed on this replica (the other keeps the cluster whole)."""
SETTLE_MARGIN_S = 0.5


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind",
        action="append",
        required=True,
        help="a victim kind as `make chaos` names it, e.g. 'grades: storage' (repeatable)",
    )
    parser.add_argument("--kills", type=int, default=5, help="kills of each kind")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the directory (logs) afterwards")
    args = parser.parse_args(argv)
    unknown = [kind for kind in args.kind if _service(kind) not in SERVICES]
    if unknown:
        parser.error(f"{unknown[0]!r}: a kind starts with one of {', '.join(SERVICES)}")
    return args


def _service(kind: str) -> str:
    return kind.partition(":")[0]


def _instance(service: str) -> str:
    """Where a kind of ``service`` is killed: VICTIM_REPLICA for grades, else the service."""
    return VICTIM_REPLICA if service == "grades" else service


class OutageRun:
    """The kinds' services under the chaos workloads, restarted as systemd would."""

    def __init__(self, directory: Path, seed: int, services: set[str]) -> None:
        self.topology = Topology(directory)
        self.answers = Answers()
        self.seed = seed
        self.wanted = services
        self.workloads: list[GradesWorkload | Workload] = []
        self.manager: Manager | None = None

    def start(self) -> None:
        self.topology.start(self.wanted)
        self.workloads = self._workloads()
        for workload in self.workloads:
            workload.start()
        self.manager = Manager(self.topology.top)
        self.manager.start()

    def _workloads(self) -> list[GradesWorkload | Workload]:
        """`make chaos`'s workload of each service that runs."""
        answers, seed, services = self.answers, self.seed, self.topology.services
        found: list[GradesWorkload | Workload] = []
        if self.topology.replicas:
            found.append(GradesWorkload(answers, self.topology.replicas, seed))
        if "gophermart" in services:
            accrual = services["accrual"].base
            found.append(GophermartWorkload(answers, services["gophermart"].base, accrual, seed))
        if "segments" in services:
            found.append(SegmentsWorkload(answers, services["segments"].base, seed))
        if "balances" in services:
            found.append(BalancesWorkload(answers, services["balances"].base, seed))
        return found

    def kill_one(self, kind: str) -> killer.Kill:
        """Kill one process of ``kind`` once every service answers and the victim settled."""
        self.topology.wait_all_ready(SETTLE_TIMEOUT_S)
        victim = wait_until(
            lambda: self._settled_victim(kind), SETTLE_TIMEOUT_S, f"a settled {kind!r} process"
        )
        done = killer.kill(victim)
        if done is None:
            raise HarnessError(f"{kind!r} was gone before the kill")
        targets = killer.affected_targets(done.victim, [VICTIM_REPLICA])
        wait_until(
            lambda: all(self.answers.ok_since(s, t, done.at) for s, t in targets),
            RECOVERY_TIMEOUT_S,
            f"a 2xx after killing {kind}",
        )
        return done

    def _settled_victim(self, kind: str) -> killer.Victim | None:
        """A process of ``kind`` that has run long enough that its death is not a failure
        to start (the supervisor backs off after those, as `make chaos`'s kills, seconds
        apart, never see)."""
        instance = _instance(_service(kind))
        found = [
            v
            for v in killer.victims(self.topology.top)
            if v.kind == kind and v.instance == instance
        ]
        if not found:
            return None
        victim = random.Random(self.seed).choice(found)
        try:
            age = time.time() - psutil.Process(victim.pid).create_time()
        except psutil.NoSuchProcess:
            return None
        return victim if age > QUICK_DEATH_S + SETTLE_MARGIN_S else None

    def stop(self) -> None:
        for workload in self.workloads:
            workload.stop()
        if self.manager is not None:
            self.manager.stop()
        self.topology.stop_all()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    directory = Path(tempfile.mkdtemp(prefix="outage-"))
    run = OutageRun(directory, args.seed, {_service(kind) for kind in args.kind})
    kills: dict[str, list[killer.Kill]] = {kind: [] for kind in args.kind}
    try:
        run.start()
        for _ in range(args.kills):
            for kind in args.kind:  # interleaved: both kinds see the same load over time
                kills[kind].append(run.kill_one(kind))
    finally:
        run.stop()
        if args.keep:
            print(f"logs in {directory / 'logs'}")
        else:
            shutil.rmtree(directory, ignore_errors=True)
    print(f"{'kind':<22} {'kills':>5} {'median s':>9} {'max s':>7}  each (s)")
    for kind, done in kills.items():
        seconds = [o.seconds or 0.0 for o in outages(done, run.answers.items, [VICTIM_REPLICA])]
        print(
            f"{kind:<22} {len(seconds):>5} {statistics.median(seconds):>9.2f} "
            f"{max(seconds):>7.2f}  {' '.join(f'{s:.2f}' for s in seconds)}"
        )
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    status = main()
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(status)
