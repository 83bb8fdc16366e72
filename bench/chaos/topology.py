"""What `make chaos` runs: the Procfile's processes, on free ports, in one directory.

The same commands `make run` starts (the grades bus or three NATS nodes, two grades
replicas pointing at each other, PostgreSQL through its Procfile wrapper, accrual,
gophermart, segments, balances), through each service's launcher in
``actors/<svc>/testing.py``, against one database as the Procfile's ``.env`` has it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection
from pathlib import Path

from actors.accrual.testing import Accrual
from actors.balances.testing import Balances
from actors.gophermart.testing import Gophermart
from actors.grades.testing import Cluster, NatsCluster, Replica
from actors.runtime.testing import START_TIMEOUT_S, HttpService, Proc, free_port, wait_until
from actors.segments.testing import Segments

__all__ = ["SERVICES", "Postgres", "Topology"]

SERVICES = ("grades", "accrual", "gophermart", "segments", "balances")
NEEDS = {"gophermart": ("accrual",)}
"""A service that cannot work without another: gophermart asks accrual about orders."""

HTTP_WORKERS = 2
"""Each service's default (what `make run` gets); the launchers' own default is 1."""
PG_START_TIMEOUT_S = 120.0
"""initdb of a fresh cluster fsyncs; on a busy shared machine it takes a while."""


class Postgres(Proc):
    """The Procfile's ``postgres`` entry: ``python -m actors.runtime.pg.foreground``."""

    def __init__(self, data_dir: Path, log_dir: Path):
        self.port = free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        argv = [
            sys.executable,
            "-m",
            "actors.runtime.pg.foreground",
            "--data-dir",
            str(data_dir),
            "--port",
            str(self.port),
        ]
        super().__init__("postgres", argv, {**os.environ, "PYTHONUNBUFFERED": "1"}, log_dir)

    def wait_up(self, timeout_s: float = PG_START_TIMEOUT_S) -> None:
        self.wait_output(f"postgres ready on 127.0.0.1:{self.port}", timeout_s)


class Topology(Cluster):
    """Every process of the run; ``top`` lists what a service manager would start."""

    def __init__(self, directory: Path, bus: str = "builtin"):
        super().__init__(directory, workers=None, backend=bus)
        self.top: dict[str, Proc] = {}
        """Top-level process by Procfile name (bus or nats1..3, replica1, postgres, ...)."""
        self.services: dict[str, HttpService] = {}
        self.nats: NatsCluster | None = None
        """grades' bus when it is NATS JetStream (CHAOS_BUS=jetstream)."""

    def start(self, services: Collection[str] = SERVICES) -> None:
        """Start PostgreSQL and grades' bus first, then the rest, and wait until all answer.

        ``services`` (default: all) limits the run to some of them, with what they need
        (gophermart: accrual); PostgreSQL starts when one of them is a PostgreSQL service.
        """
        wanted = {*services, *(need for name in services for need in NEEDS.get(name, ()))}
        postgres = None
        if wanted - {"grades"}:
            postgres = self.add(Postgres(self.dir / "postgres", self.log_dir))
            postgres.start()
            self.top["postgres"] = postgres
        self.replicas: list[Replica] = self._grades() if "grades" in wanted else []
        if postgres is not None:
            postgres.wait_up()
            self.services = self._pg_services(postgres.dsn, wanted)
        replicas = {f"replica{r.replica_id}": r for r in self.replicas}
        for name, proc in [*replicas.items(), *self.services.items()]:
            self.add(proc)
            self.top[name] = proc
            proc.start()
        for replica in self.replicas:
            replica.wait_ready(START_TIMEOUT_S)
        for service in self.services.values():
            service.wait_ready(START_TIMEOUT_S)

    def wait_all_ready(self, timeout_s: float) -> None:
        """Wait until every replica and service runs and is ready.

        NOTE: not each one's wait_ready(), which fails on a process not running: one
        killed a moment ago (its old workers' last answers already counted as its
        recovery) runs again only once the service manager has restarted it.
        """
        procs = [*self.replicas, *self.services.values()]
        wait_until(
            lambda: all(proc.running() and proc.ready() for proc in procs),
            timeout_s,
            "every service running and ready",
        )

    def _grades(self) -> list[Replica]:
        """grades' bus, started, and its two replicas (not started yet)."""
        bus = self.bus()
        if isinstance(bus, NatsCluster):
            self.nats = bus
            self.top.update({node.name: node for node in bus.nodes})
        else:
            self.top["bus"] = bus
        one = self.replica(1, bus, start=False)
        two = self.replica(2, bus, next_url=one.get_base, start=False)
        one.env["NEXT_REPLICA_URL"] = two.get_base  # the Procfile's ring of two
        return [one, two]

    def _pg_services(self, dsn: str, wanted: set[str]) -> dict[str, HttpService]:
        """The launchers of the wanted PostgreSQL services (not started yet)."""
        log_dir = self.log_dir
        accrual = Accrual(dsn, log_dir, workers=HTTP_WORKERS)
        every: dict[str, HttpService] = {
            "accrual": accrual,
            "gophermart": Gophermart(dsn, accrual.base, log_dir, workers=HTTP_WORKERS),
            "segments": Segments(dsn, log_dir, workers=HTTP_WORKERS),
            "balances": Balances(dsn, log_dir, http_workers=HTTP_WORKERS),
        }
        return {name: service for name, service in every.items() if name in wanted}
