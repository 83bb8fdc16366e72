"""One PostgreSQL service's bench run, start to finish, for gophermart, segments and balances.

wrk present, a log directory, a private PostgreSQL with a database for the service and
pgbench's tables for the yardstick, the service's processes stopped before the server,
any failure recorded in the results (never a traceback), and the logs kept only when
something failed.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import asyncpg
import requests

from actors.runtime.testing import ProcGroup
from bench import deps
from bench.common import profile
from bench.common.errors import BenchError
from bench.common.pg import Postgres
from bench.common.results import Results

__all__ = ["run_service_bench"]

FAILURES = (BenchError, AssertionError, OSError, asyncpg.PostgresError, requests.RequestException)


def run_service_bench(
    out: Results, header: str, pgbench_scale: int, body: Callable[[Postgres, ProcGroup, str], None]
) -> int:
    """Run ``body(pg, group, dsn)``; the exit status of ``out.finish()``.

    Args:
        out: the service's results (its name names the database and the log dir).
        header: printed after "<service> bench: " before anything starts.
        pgbench_scale: of the yardstick's `pgbench -i`.
        body: starts the service's processes in ``group`` and measures.
    """
    service = out.service
    found = deps.ensure(peers=False)
    if not found.wrk:
        out.fail("wrk is not installed: " + "; ".join(found.notes))
        return out.finish()
    print(f"{service} bench: {header}", flush=True)
    if out.args.get("profile"):
        profile.start(out.profile_dir)
        print(f"  profiling with py-spy into {out.profile_dir}", flush=True)
    logs = Path(tempfile.mkdtemp(prefix=f"bench-{service}-"))
    group = ProcGroup(logs)
    try:
        with Postgres(service) as pg:
            dsn = pg.create_database(service)
            pg.pgbench_init("yardstick", scale=pgbench_scale)
            try:
                body(pg, group, dsn)
            finally:
                for problem in group.stop_all():
                    out.fail(f"stop: {problem[:500]}")
    except FAILURES as exc:
        out.fail(f"{type(exc).__name__}: {str(exc)[:2000]}")
    if out.failures:
        print(f"process logs kept in {logs}")
    else:
        shutil.rmtree(logs, ignore_errors=True)
    return out.finish()
