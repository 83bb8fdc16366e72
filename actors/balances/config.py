"""balances' settings, from the command line and the environment (the environment wins).

The only module of the service that reads os.environ: the command, the worker actors
and the HTTP app's `get_app()` all call `load`; the supervisor hands its children
`child_environment()`.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from actors.runtime.config import (
    Address,
    env_int,
    env_str,
    env_wins,
    parse_address,
    parse_database_uri,
    parse_service_args,
    service_parser,
)

__all__ = ["PROGRAM", "BalancesConfig", "load"]

PROGRAM = "balances"
DEFAULT_ADDRESS = "localhost:3333"
DEFAULT_DATA_DIR = "data"


@dataclass(frozen=True)
class BalancesConfig:
    """Everything the supervisor, its worker actors and its HTTP workers need."""

    address: Address
    """RUN_ADDRESS / -a: where HTTP listens; also names this instance's private files."""
    database_uri: str
    """DATABASE_URI / -d."""
    database_source: str = "DATABASE_URI"
    """Where database_uri came from ("DATABASE_URI" or "-d"), for error messages."""
    workers: int = 2
    """BALANCES_WORKERS: worker actors (default: CPU cores)."""
    http_workers: int = 2
    """BALANCES_HTTP_WORKERS: gunicorn workers."""
    run_dir: Path = Path("data/balances-3333")
    """BALANCES_RUN_DIR: this instance's ipc sockets (default data/balances-<port>)."""
    poll_ms: int = 1000
    """BALANCES_POLL_MS: a worker looks at its queue at least this often."""
    lease_ms: int = 5000
    """BALANCES_LEASE_MS: shard lease length; renewed every third of it."""
    batch_users: int = 200
    """BALANCES_BATCH_USERS: users per apply transaction (group commit)."""
    batch_per_user: int = 100
    """BALANCES_BATCH_PER_USER: tasks of one user per apply transaction."""
    db_wait_s: int = 30
    """BALANCES_DB_WAIT_S: how long start waits for the database."""

    def child_environment(self) -> dict[str, str]:
        """The environment of the supervisor's children: this one, with the settings as
        resolved (a flag becomes its variable), so every child sees the same values."""
        return {
            **os.environ,
            "RUN_ADDRESS": str(self.address),
            "DATABASE_URI": self.database_uri,
            "BALANCES_RUN_DIR": str(self.run_dir),
            "PYTHONUNBUFFERED": "1",
        }

    def owner(self, index: int) -> str:
        """The lease owner name of worker `index`: stable across its restarts."""
        return f"{socket.gethostname()}:{self.address.port}/worker-{index}"


def load(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> BalancesConfig:
    """The configuration from flags and the environment (the environment wins).

    Raises:
        ConfigError: a malformed value, naming its variable or flag (exit status 2).
    """
    environ = os.environ if environ is None else environ
    parser = service_parser(
        PROGRAM, "Users' balances, changed by tasks applied in order.", DEFAULT_ADDRESS
    )
    args = parse_service_args(parser, argv)
    address_text, source = env_wins(environ, "RUN_ADDRESS", args.address, DEFAULT_ADDRESS)
    address = parse_address(
        address_text, "RUN_ADDRESS" if source == "RUN_ADDRESS" else "-a", PROGRAM
    )
    database_text, source = env_wins(environ, "DATABASE_URI", args.database, "")
    database_source = "-d" if source == "flag" else "DATABASE_URI"
    database_uri = parse_database_uri(database_text, database_source, PROGRAM)
    cores = os.cpu_count() or 1
    data_dir = env_str(environ, "BALANCES_DATA_DIR", DEFAULT_DATA_DIR)
    run_dir = Path(
        env_str(environ, "BALANCES_RUN_DIR", f"{data_dir}/balances-{address.port}")
    ).absolute()
    lease_ms = env_int(environ, "BALANCES_LEASE_MS", 5000, 300, 600_000, PROGRAM)
    return BalancesConfig(
        address=address,
        database_uri=database_uri,
        database_source=database_source,
        workers=env_int(environ, "BALANCES_WORKERS", cores, 1, 64, PROGRAM),
        http_workers=env_int(environ, "BALANCES_HTTP_WORKERS", 2, 1, 64, PROGRAM),
        run_dir=run_dir,
        poll_ms=env_int(environ, "BALANCES_POLL_MS", 1000, 10, 60_000, PROGRAM),
        lease_ms=lease_ms,
        batch_users=env_int(environ, "BALANCES_BATCH_USERS", 200, 1, 10_000, PROGRAM),
        batch_per_user=env_int(environ, "BALANCES_BATCH_PER_USER", 100, 1, 10_000, PROGRAM),
        db_wait_s=env_int(environ, "BALANCES_DB_WAIT_S", 30, 0, 3600, PROGRAM),
    )
