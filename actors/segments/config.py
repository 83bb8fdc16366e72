"""segments' configuration: every variable, its default, its check; the environment wins.

RUN_ADDRESS / -a           listen address, host:port (default localhost:8100)
DATABASE_URI / -d          PostgreSQL URI, postgres:// or postgresql:// (required)
SEGMENTS_HTTP_WORKERS      gunicorn workers (default 2)
SEGMENTS_RUN_DIR           this instance's private sockets (default
                           <tmp>/segments-<uid>-<host>-<port>: two instances differ)
SEGMENTS_DB_WAIT_S         how long to wait for the database at start (default 30)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from actors.runtime.config import (
    Address,
    ConfigError,
    env_int,
    env_str,
    env_wins,
    parse_address,
    parse_database_uri,
    parse_service_args,
    service_parser,
)
from actors.runtime.endpoints import ipc_endpoint

__all__ = ["DEFAULT_ADDRESS", "PROGRAM", "Config", "ConfigError"]

PROGRAM = "segments"
DEFAULT_ADDRESS = "localhost:8100"
DESCRIPTION = (
    "User segments for experiments: an HTTP API on PostgreSQL, with TTL, percent "
    "rollout and a monthly history report."
)


@dataclass(frozen=True)
class Config:
    """Everything a segments instance needs; see the README's segments configuration table."""

    address: Address
    database_uri: str
    http_workers: int
    run_dir: Path
    db_wait_s: int

    @property
    def reaper_endpoint(self) -> str:
        """The reaper's ROUTER: HTTP workers nudge it when they add an expiry."""
        return ipc_endpoint(self.run_dir, "reaper")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> Config:
        """Read flags (argv; None for sys.argv) and the environment; the environment wins.

        Raises:
            ConfigError: a malformed or missing value, naming the variable or flag.
        """
        args = parse_service_args(service_parser(PROGRAM, DESCRIPTION, DEFAULT_ADDRESS), argv)
        raw_address, address_from = env_wins(environ, "RUN_ADDRESS", args.address, DEFAULT_ADDRESS)
        address = parse_address(
            raw_address, "RUN_ADDRESS" if address_from != "flag" else "-a", PROGRAM
        )
        raw_uri, uri_from = env_wins(environ, "DATABASE_URI", args.database, "")
        database_uri = parse_database_uri(
            raw_uri, "-d" if uri_from == "flag" else "DATABASE_URI", PROGRAM
        )
        default_run_dir = (
            Path(tempfile.gettempdir()) / f"segments-{os.getuid()}-{address.host}-{address.port}"
        )
        return cls(
            address=address,
            database_uri=database_uri,
            http_workers=env_int(environ, "SEGMENTS_HTTP_WORKERS", 2, 1, 64, PROGRAM),
            run_dir=Path(env_str(environ, "SEGMENTS_RUN_DIR", str(default_run_dir))).absolute(),
            db_wait_s=env_int(environ, "SEGMENTS_DB_WAIT_S", 30, 1, 3600, PROGRAM),
        )

    def child_env(self, environ: Mapping[str, str]) -> dict[str, str]:
        """The environment of this instance's children: the resolved settings win."""
        return {
            **environ,
            "RUN_ADDRESS": str(self.address),
            "DATABASE_URI": self.database_uri,
            "SEGMENTS_RUN_DIR": str(self.run_dir),
        }
