"""A private PostgreSQL for one benchmark run, and pgbench against it.

    with Postgres("gophermart") as pg:            # free port, temp dir, fsync on
        dsn = pg.create_database("gophermart")
        pg.pgbench_init("yardstick", scale=1)
        result = pg.pgbench("yardstick", "-N", clients=16, duration_s=10)
        result.tps, result.p50_ms, result.p99_ms

pgbench modes: ``-S`` (select only), ``-N`` (simple update: update an account, select
it, insert a history row; no branch/teller rows, so no hot row), ``tpcb-like`` (the
TPC-B-like script: also updates the teller and branch rows). Latency percentiles come
from pgbench's per-transaction log (``-l``), read after the run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self

from actors.runtime.pg.server import PostgresServer
from actors.runtime.testing import free_port
from bench.common.errors import BenchError

__all__ = ["MODES", "PgbenchResult", "Postgres", "percentile"]

MODES = {"-S": ["-S"], "-N": ["-N"], "tpcb-like": ["-b", "tpcb-like"]}
INIT_TIMEOUT_S = 300.0
GRACE_S = 30.0  # beyond a run's duration: connections, the final report


@dataclass
class PgbenchResult:
    mode: str
    clients: int
    duration_s: float
    tps: float
    p50_ms: float
    p99_ms: float
    transactions: int
    failed: int

    def as_dict(self) -> dict:
        return asdict(self)


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list (0.0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[rank]


class Postgres:
    """A private cluster (PostgresServer: fsync and synchronous_commit on) in a temp dir."""

    def __init__(self, name: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-pg-"))
        self.server = PostgresServer(self.dir / "data", port=free_port())

    def __enter__(self) -> Self:
        self.server.init()
        self.server.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def dsn(self, dbname: str = "postgres") -> str:
        return self.server.dsn(dbname)

    def create_database(self, name: str) -> str:
        return self.server.create_database(name)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        return self.server.psql(sql, dbname)

    def _pgbench(self) -> str:
        return str(self.server.bin_dir / "pgbench")

    def pgbench_init(self, dbname: str, scale: int) -> float:
        """Create dbname and pgbench's tables at `scale` (100k accounts each); seconds."""
        self.create_database(dbname)
        started = time.monotonic()
        # G: rows generated server-side (faster than client-side copy); v: vacuum; p: keys
        argv = [
            self._pgbench(),
            "-i",
            "-q",
            "-I",
            "dtGvp",
            "-s",
            str(scale),
            "-h",
            self.server.host,
            "-p",
            str(self.server.port),
            "-U",
            "postgres",
            dbname,
        ]
        done = subprocess.run(
            argv, check=False, capture_output=True, text=True, timeout=INIT_TIMEOUT_S
        )
        if done.returncode != 0:
            raise BenchError(f"pgbench -i failed: {done.stderr.strip()[-800:]}")
        return time.monotonic() - started

    def pgbench(
        self, dbname: str, mode: str, clients: int, duration_s: float, threads: int = 2
    ) -> PgbenchResult:
        """One pgbench run of `mode` (a key of MODES); tps and latency percentiles."""
        logs = Path(tempfile.mkdtemp(prefix="pgbench-log-", dir=self.dir))
        argv = [
            self._pgbench(),
            *MODES[mode],
            "-c",
            str(clients),
            "-j",
            str(min(threads, clients)),
            "-T",
            str(max(1, round(duration_s))),
            "-n",
            "-l",
            "--log-prefix",
            str(logs / "tx"),
            "-h",
            self.server.host,
            "-p",
            str(self.server.port),
            "-U",
            "postgres",
            dbname,
        ]
        try:
            done = subprocess.run(
                argv, check=False, capture_output=True, text=True, timeout=duration_s + GRACE_S
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"pgbench overran {duration_s + GRACE_S:.0f} s") from None
        if done.returncode != 0:
            raise BenchError(
                f"pgbench {mode} exited {done.returncode}: {done.stderr.strip()[-800:]}"
            )
        latencies, failed = _read_logs(logs)
        shutil.rmtree(logs, ignore_errors=True)
        tps = _tps(done.stdout)
        return PgbenchResult(
            mode=mode,
            clients=clients,
            duration_s=duration_s,
            tps=tps,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            transactions=len(latencies),
            failed=failed,
        )


def _tps(stdout: str) -> float:
    for line in stdout.splitlines():
        # "tps = 7512.3 (without initial connection time)"; older: "(excluding ...)"
        if line.startswith("tps = "):
            return float(line.split()[2])
    raise BenchError(f"pgbench printed no tps line:\n{stdout[-800:]}")


def _read_logs(directory: Path) -> tuple[list[float], int]:
    """Latencies (ms, ascending) and failed transactions from pgbench's -l files.

    Each line: client_id transaction_no time script_no time_epoch time_us [...], with
    `time` the latency in microseconds, or "failed"/"skipped".
    """
    latencies: list[float] = []
    failed = 0
    for path in directory.glob("tx*"):
        with open(path) as log:
            for line in log:
                fields = line.split(maxsplit=3)
                if len(fields) < 3:
                    continue
                if fields[2].isdigit():
                    latencies.append(int(fields[2]) / 1000)
                else:
                    failed += 1
    latencies.sort()
    return latencies, failed
