"""Picks a random process of the whole tree by its title and SIGKILLs it.

Victims are found by process title, not from a fixed list, so a service that
changes its process layout is still covered: ``<svc>: <role>`` (``grades: storage
replica=1``, ``balances: worker 0``), gunicorn's ``gunicorn: master [<svc>: ...]``
and workers, PostgreSQL's postmaster and client backends, nats-server nodes. A kind
is the title without its numbers (``grades: http worker``); each kill picks a kind
at random, then one process of it, so the many backends do not crowd out the rest.
Not victims: PostgreSQL's own auxiliary processes (checkpointer, walwriter, ...)
and the Procfile wrapper of PostgreSQL (``python -m actors.runtime.pg.foreground``),
which only watches the postmaster.
"""

from __future__ import annotations

import os
import random
import re
import signal
import time
from collections.abc import Callable
from typing import NamedTuple

import psutil

from actors.runtime.testing import Proc

__all__ = [
    "NATS_NODE",
    "NATS_STREAM_LEADER",
    "Kill",
    "Victim",
    "affected_targets",
    "classify",
    "pick",
    "victims",
]

GUNICORN = re.compile(r"^gunicorn: (master|worker) \[(\w+): (\w+)(.*)\]")
SERVICE = re.compile(r"^(\w+): (.*)")
REPLICA = re.compile(r"replica=(\d+)")
PG_SERVICES = ("accrual", "gophermart", "segments", "balances")
NATS_NODE = "grades: nats node"
NATS_STREAM_LEADER = "grades: nats stream leader"
"""A NATS node that led grades' stream when it was killed: a kind of its own, as its
death stops writes until the other two elect a leader (bench.chaos.report says why)."""


class Victim(NamedTuple):
    pid: int
    service: str
    """grades, gophermart, accrual, segments, balances or postgres."""
    kind: str
    """``service: role``, e.g. ``grades: storage``, ``postgres: backend``."""
    instance: str
    """replica1/replica2, bus (grades' bus or a NATS node), or the service's name."""


class Kill(NamedTuple):
    at: float
    """time.monotonic() when the signal was sent."""
    victim: Victim


def classify(title: str) -> Victim | None:
    """What a process is, from its title; None when it is no victim."""
    if "/bin/postgres " in title or title.endswith("/bin/postgres"):
        return Victim(0, "postgres", "postgres: postmaster", "postgres")
    if title.startswith("postgres: "):
        is_client = "(" in title and "127.0.0.1" in title
        return Victim(0, "postgres", "postgres: backend", "postgres") if is_client else None
    if "nats-server" in title:
        return Victim(0, "grades", NATS_NODE, "bus")
    match = GUNICORN.match(title)
    if match:
        role, service, name, rest = match.groups()
        return Victim(0, service, f"{service}: {name} {role}", _instance(service, rest))
    match = SERVICE.match(title)
    if match:
        service, rest = match.groups()
        words = [w for w in rest.split() if not REPLICA.match(w) and not w[0].isdigit()]
        instance = "bus" if words == ["bus"] else _instance(service, rest)
        return Victim(0, service, f"{service}: {' '.join(words)}", instance)
    return None


def _instance(service: str, rest: str) -> str:
    replica = REPLICA.search(rest)
    return f"replica{replica.group(1)}" if replica else service


def victims(top: dict[str, Proc]) -> list[Victim]:
    """Every process of the tree that may be killed, with what it is."""
    found = []
    for proc in top.values():
        if proc.process is None:
            continue
        try:
            root = psutil.Process(proc.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                title = " ".join(process.cmdline()).strip()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            victim = classify(title)
            if victim is not None:
                found.append(victim._replace(pid=process.pid))
    return found


def pick(found: list[Victim], rng: random.Random) -> Victim:
    """A kind at random, then one process of that kind."""
    kinds = sorted({v.kind for v in found})
    kind = rng.choice(kinds)
    return rng.choice(sorted((v for v in found if v.kind == kind), key=lambda v: v.pid))


def kill(victim: Victim) -> Kill | None:
    """SIGKILL it; None if it was already gone."""
    at = time.monotonic()
    try:
        os.kill(victim.pid, signal.SIGKILL)
    except ProcessLookupError:
        return None
    return Kill(at, victim)


def affected_targets(victim: Victim, replicas: list[str]) -> list[tuple[str, str]]:
    """The (service, target) pairs whose answers measure the outage a kill of victim begins."""
    if victim.service == "postgres":
        return [(service, service) for service in PG_SERVICES]
    if victim.service == "grades":  # writes (``replicaN``) and reads (``replicaN reads``)
        hit = replicas if victim.instance == "bus" else [victim.instance]
        return [("grades", f"{replica}{path}") for replica in hit for path in ("", " reads")]
    return [(victim.service, victim.service)]


def wait_between(rng: random.Random, every_s: float, stop: Callable[[float], bool]) -> bool:
    """Sleep 0.5-1.5 x every_s (``stop`` waits and says whether to stop)."""
    return stop(rng.uniform(0.5, 1.5) * every_s)
