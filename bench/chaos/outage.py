"""The write and read outage after SIGKILLs of one kind of grades process, kill by kill.

`make chaos` kills at random across every service; this kills only one kind, N times,
under the same grades workload, service manager and outage measure (bench.chaos.report),
with only the bus and two replicas running, so a change to one kind's recovery is
measured quickly and side by side with another kind:

    python -m bench.chaos.outage --kind 'grades: storage' --kind 'grades: supervisor' --kills 5
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

from actors.grades.testing import Cluster, Replica
from actors.runtime.supervisor import QUICK_DEATH_S
from actors.runtime.testing import START_TIMEOUT_S, HarnessError, wait_until
from bench.chaos import killer
from bench.chaos.answers import Answers
from bench.chaos.manager import Manager
from bench.chaos.report import outages
from bench.chaos.workloads.grades import GradesWorkload

__all__ = ["main"]

RECOVERY_TIMEOUT_S = 60.0
SETTLE_TIMEOUT_S = 60.0
VICTIM_REPLICA = "replica2"
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
    return parser.parse_args(argv)


class OutageRun:
    """The bus and two replicas under the chaos workload, restarted as systemd would."""

    def __init__(self, directory: Path, seed: int) -> None:
        self.cluster = Cluster(directory, workers=None)
        self.answers = Answers()
        self.seed = seed
        self.replicas: list[Replica] = []

    def start(self) -> None:
        bus, one, two, _ = self.cluster.launch_fresh()
        self.replicas = [one, two]
        for replica in self.replicas:
            replica.wait_ready(START_TIMEOUT_S)
        self.workload = GradesWorkload(self.answers, self.replicas, self.seed)
        self.workload.start()
        self.manager = Manager({"bus": bus, "replica1": one, "replica2": two})
        self.manager.start()

    def kill_one(self, kind: str) -> killer.Kill:
        """Kill one process of ``kind`` on VICTIM_REPLICA once the cluster is whole."""
        for replica in self.replicas:
            replica.wait_ready(SETTLE_TIMEOUT_S)
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
        """A process of ``kind`` on VICTIM_REPLICA that has run long enough that its death
        is not a failure to start (the supervisor backs off after those, as `make chaos`'s
        kills, seconds apart, never see)."""
        found = [
            v
            for v in killer.victims(dict(self.manager.procs))
            if v.kind == kind and v.instance == VICTIM_REPLICA
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
        self.workload.stop()
        self.manager.stop()
        self.cluster.stop_all()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    directory = Path(tempfile.mkdtemp(prefix="outage-"))
    run = OutageRun(directory, args.seed)
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
