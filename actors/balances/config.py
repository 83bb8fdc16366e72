"""balances' settings, from the command line and the environment (the environment wins).

The only module of the service that reads the environment: the command, the worker
actors and the HTTP app's `get_app()` all call `Config.from_env`; the supervisor
hands its children `child_env()` over its own environment. RUN_ADDRESS/-a,
DATABASE_URI/-d, BALANCES_RUN_DIR and BALANCES_DB_WAIT_S follow the shared rules
of actors.runtime.config, with one exception kept for existing setups: when
BALANCES_DATA_DIR is set (and BALANCES_RUN_DIR is not), the run dir is
`$BALANCES_DATA_DIR/balances-<port>` as before; unset, it is the shared default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from actors.runtime.config import (
    ServiceSettings,
    common_settings,
    env_int,
    env_str,
    run_dir_variable,
    service_parser,
)

__all__ = ["PROGRAM", "Config"]

PROGRAM = "balances"
DEFAULT_ADDRESS = "localhost:3333"
DESCRIPTION = "Users' balances, changed by tasks applied in order."


@dataclass(frozen=True)
class Config(ServiceSettings):
    """Everything the supervisor, its worker actors and its HTTP workers need."""

    workers: int
    """BALANCES_WORKERS (default: CPU cores): worker actors."""
    http_workers: int
    """BALANCES_HTTP_WORKERS (default 2): gunicorn workers."""
    poll_ms: int
    """BALANCES_POLL_MS (default 1000): a worker looks at its queue at least this often."""
    lease_ms: int
    """BALANCES_LEASE_MS (default 5000): shard lease length; renewed every third of it."""
    batch_users: int
    """BALANCES_BATCH_USERS (default 200): users per apply transaction (group commit)."""
    batch_per_user: int
    """BALANCES_BATCH_PER_USER (default 100): tasks of one user per apply transaction."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> Config:
        """Read -a, -d (argv; None: sys.argv[1:]) and the BALANCES_* variables; ConfigError
        (exit status 2) names a bad one."""
        parser = service_parser(PROGRAM, DESCRIPTION, DEFAULT_ADDRESS)
        shared, _ = common_settings(parser, environ, argv)
        data_dir = env_str(environ, "BALANCES_DATA_DIR", "")
        if data_dir and not env_str(environ, run_dir_variable(PROGRAM), ""):
            run_dir = Path(data_dir, f"{PROGRAM}-{shared.address.port}").absolute()
            shared = replace(shared, run_dir=run_dir)
        return cls(
            **shared.shared_fields(),
            workers=env_int(environ, "BALANCES_WORKERS", os.cpu_count() or 1, 1, 64, PROGRAM),
            http_workers=env_int(environ, "BALANCES_HTTP_WORKERS", 2, 1, 64, PROGRAM),
            poll_ms=env_int(environ, "BALANCES_POLL_MS", 1000, 10, 60_000, PROGRAM),
            lease_ms=env_int(environ, "BALANCES_LEASE_MS", 5000, 300, 600_000, PROGRAM),
            batch_users=env_int(environ, "BALANCES_BATCH_USERS", 200, 1, 10_000, PROGRAM),
            batch_per_user=env_int(environ, "BALANCES_BATCH_PER_USER", 100, 1, 10_000, PROGRAM),
        )

    def worker_name(self, index: int) -> str:
        """Worker ``index``'s name under the supervisor, which also names its endpoint."""
        return f"worker-{index}"

    def worker_endpoint(self, index: int) -> str:
        """Worker ``index``'s ROUTER in the run dir: its instance's HTTP workers nudge it
        there, its supervisor pings it there."""
        return self.actor_endpoint(self.worker_name(index))

    def owner(self, index: int) -> str:
        """The lease owner name of worker `index`: stable across its restarts."""
        return f"{socket.gethostname()}:{self.address.port}/worker-{index}"
