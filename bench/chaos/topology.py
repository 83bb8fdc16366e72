"""What `make chaos` runs: the Procfile's processes, on free ports, in one directory.

The same commands `make run` starts (the grades bus or three NATS nodes, two grades
replicas pointing at each other, PostgreSQL through its Procfile wrapper, accrual,
gophermart, segments, balances), through each service's launcher in
``actors/<svc>/testing.py``, against one database as the Procfile's ``.env`` has it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from actors.accrual.testing import Accrual
from actors.balances.testing import Balances
from actors.gophermart.testing import Gophermart
from actors.grades.testing import Cluster, NatsCluster, Replica
from actors.runtime.testing import START_TIMEOUT_S, HttpService, Proc, free_port
from actors.segments.testing import Segments

__all__ = ["Postgres", "Topology"]

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

    def start(self) -> None:
        """Start PostgreSQL and grades' bus first, then the rest, and wait until all answer."""
        postgres = self.add(Postgres(self.dir / "postgres", self.log_dir))
        postgres.start()
        self.top["postgres"] = postgres
        bus = self.bus()
        if isinstance(bus, NatsCluster):
            self.nats = bus
            self.top.update({node.name: node for node in bus.nodes})
        else:
            self.top["bus"] = bus
        one = self.replica(1, bus, start=False)
        two = self.replica(2, bus, next_url=one.get_base, start=False)
        one.env["NEXT_REPLICA_URL"] = two.get_base  # the Procfile's ring of two
        self.replicas: list[Replica] = [one, two]
        postgres.wait_up()
        dsn, log_dir = postgres.dsn, self.log_dir
        accrual = Accrual(dsn, log_dir, workers=HTTP_WORKERS)
        self.services = {
            "accrual": accrual,
            "gophermart": Gophermart(dsn, accrual.base, log_dir, workers=HTTP_WORKERS),
            "segments": Segments(dsn, log_dir, workers=HTTP_WORKERS),
            "balances": Balances(dsn, log_dir, http_workers=HTTP_WORKERS),
        }
        for name, proc in [("replica1", one), ("replica2", two), *self.services.items()]:
            self.add(proc)
            self.top[name] = proc
            proc.start()
        for replica in self.replicas:
            replica.wait_ready(START_TIMEOUT_S)
        for service in self.services.values():
            service.wait_ready(START_TIMEOUT_S)
