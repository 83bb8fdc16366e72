"""Fault soak: kill -9 random processes of a cluster under writes; lose nothing.

A bus and two replicas run while writers hammer both replicas. Every few
seconds a random process is killed with SIGKILL: the bus, a whole replica (its
supervisor and every child at once, as a crashed machine would lose them), or
one child (storage actor, broker, a gunicorn master or worker), which the
replica's supervisor restarts. Whole processes the soak killed are started
again by the soak. At the end the replicas must be identical and hold every
write they acknowledged. Exit status 1 otherwise.

    python bench/soak.py --minutes 10          # make soak (SOAK_MINUTES=10)
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import sys
import threading
import time
from collections.abc import Callable

import requests

from actors.grades.backup import read_backup
from bench.grades.stack import AUTH, BenchError, Stack

FIELDS = ("postpaid_limit", "spp", "shipping_fee", "return_fee")
USERS = [f"soak{i}" for i in range(2000)]
RECOVERY_TIMEOUT_S = 90.0
CONVERGE_TIMEOUT_S = 180.0
VICTIMS = ("bus", "replica", "storage", "broker", "http", "http-worker")


class Writer(threading.Thread):
    """Writes increasing values of one field of every user through one replica."""

    def __init__(
        self,
        replica,
        field: str,
        on_answer: Callable[[float, float, int], None] | None = None,
        pause_s: float = 0.0,
    ):
        super().__init__(daemon=True)
        self.replica, self.field = replica, field
        self.on_answer = on_answer
        """Called with (sent, answered, status; 0 for no answer) after every request."""
        self.pause_s = pause_s
        """Between requests: 0 hammers; `make chaos` keeps a steady pace."""
        self.acked: dict[str, int] = {}
        self.counts = {"ok": 0, "refused": 0, "unknown": 0, "down": 0}
        self.stop_event = threading.Event()

    def run(self) -> None:
        session, counter = requests.Session(), itertools.count(1)
        for user in itertools.cycle(USERS):
            if self.stop_event.is_set():
                return
            value, sent = next(counter), time.monotonic()
            try:
                response = session.post(
                    f"{self.replica.set_base}/set",
                    auth=AUTH,
                    timeout=10,
                    json={"user_id": user, self.field: value},
                )
                status = response.status_code
            except requests.RequestException:
                status, session = 0, requests.Session()
            if self.on_answer is not None:
                self.on_answer(sent, time.monotonic(), status)
            if self.pause_s:
                self.stop_event.wait(self.pause_s)
            if status == 200:
                self.acked[user] = value
                self.counts["ok"] += 1
            elif status == 503:
                self.counts["refused"] += 1
            elif status == 504:
                self.counts["unknown"] += 1
            else:
                self.counts["down"] += 1
                time.sleep(0.05)


def full_map(replica) -> dict:
    response = requests.get(f"{replica.get_base}/backup", timeout=120)
    response.raise_for_status()
    _meta, batches = read_backup(io.BytesIO(response.content))
    return {key: row for batch in batches for key, row in batch}


def converge(replicas) -> list[dict]:
    """Each replica's full map, once they are equal or CONVERGE_TIMEOUT_S passed."""
    started, maps = time.monotonic(), []
    while time.monotonic() - started < CONVERGE_TIMEOUT_S:
        maps = [full_map(replica) for replica in replicas]
        if all(m == maps[0] for m in maps):
            break
        time.sleep(1)
    return maps


def lost_writes(writers: list[Writer], maps: list[dict]) -> list[tuple[str, str, int, int]]:
    """(field, user, acknowledged value, replica index) of every acknowledged write that
    some replica does not hold (values only grow, so a smaller one means it is lost)."""
    return [
        (w.field, user, value, index)
        for index, rows in enumerate(maps)
        for w in writers
        for user, value in w.acked.items()
        if rows.get(user, [0] * 8)[FIELDS.index(w.field)] < value
    ]


def healthy(replicas) -> bool:
    """Every replica ready and accepting a write."""
    for replica in replicas:
        try:
            if not replica.ready():
                return False
            response = requests.post(
                f"{replica.set_base}/set",
                auth=AUTH,
                timeout=5,
                json={"user_id": "soak-probe", "spp": 1},
            )
            if response.status_code != 200:
                return False
        except requests.RequestException:
            return False
    return True


def kill(bus, replicas, victim: str, rng: random.Random) -> str:
    """SIGKILL one process (or a whole replica) and start again what no one else will."""
    replica = rng.choice(replicas)
    if victim == "bus":
        bus.kill9()
        time.sleep(rng.uniform(0, 2))
        bus.start()
        bus.wait_listening()
        return "bus"
    if victim == "replica":
        replica.kill9()
        time.sleep(rng.uniform(0, 2))
        replica.start()
        return f"replica{replica.replica_id}"
    role = "http" if victim == "http-worker" else victim
    procs = (
        replica.workers()
        if victim == "http-worker"
        else [
            p
            for p in replica.role(role)
            if victim in ("storage", "broker")
            or p.ppid() not in {q.pid for q in replica.role(role)}
        ]
    )
    if not procs:
        return f"{victim}{replica.replica_id} (not running)"
    rng.choice(procs).kill()
    return f"{victim}{replica.replica_id}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds, on average")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(
        f"soak: {args.minutes} min, a kill every ~{args.kill_every} s, seed {args.seed}", flush=True
    )
    with Stack("soak") as stack:
        bus = stack.bus()
        one = stack.replica(1, bus)
        two = stack.replica(2, bus, next_url=one.get_base)
        replicas = [one, two]
        writers = [Writer(replica, field) for replica, field in zip(replicas * 2, FIELDS)]
        for writer in writers:
            writer.start()
        kills, longest, deadline = {}, 0.0, time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 1.5) * args.kill_every)
            what = kill(bus, replicas, rng.choice(VICTIMS), rng)
            kills[what] = kills.get(what, 0) + 1
            started = time.monotonic()
            while not healthy(replicas):
                if time.monotonic() - started > RECOVERY_TIMEOUT_S:
                    raise BenchError(f"no recovery {RECOVERY_TIMEOUT_S:.0f} s after killing {what}")
                time.sleep(0.1)
            recovery = time.monotonic() - started
            longest = max(longest, recovery)
            print(
                f"  killed {what:22s} recovered in {recovery:5.1f} s  "
                f"acked so far {sum(w.counts['ok'] for w in writers)}",
                flush=True,
            )
        for writer in writers:
            writer.stop_event.set()
            writer.join(timeout=30)
        maps = converge(replicas)
        converged = maps[0] == maps[1]
        lost = lost_writes(writers, maps)
        restarts = sum(r.output().count("restarting in") for r in replicas)
    totals = {key: sum(w.counts[key] for w in writers) for key in writers[0].counts}
    print(f"\nwrites acknowledged   {totals['ok']}")
    print(
        f"writes refused (503)  {totals['refused']}, outcome unknown (504) "
        f"{totals['unknown']}, no answer {totals['down']}"
    )
    print(
        f"kills                 {sum(kills.values())}: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(kills.items()))
    )
    print(f"child restarts        {restarts} (by the replicas' supervisors)")
    print(f"longest recovery      {longest:.1f} s")
    print(f"replicas identical    {'yes' if converged else 'NO'} ({len(maps[0])} rows)")
    print(f"writes lost           {len(lost)}")
    for field, user, value, index in lost[:10]:
        print(f"  lost: {user}.{field} acknowledged {value}, not on replica {index + 1}")
    return 0 if converged and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
