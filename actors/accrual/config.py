"""accrual's settings: flags and environment (the environment wins), read once.

| variable              | flag | default         | meaning                                      |
|-----------------------|------|-----------------|----------------------------------------------|
| RUN_ADDRESS           | -a   | localhost:8091  | HTTP listen address                          |
| DATABASE_URI          | -d   | (required)      | PostgreSQL URI                               |
| ACCRUAL_RATE_LIMIT    |      | 0 (no limit)    | order GETs a minute, service-wide          |
| ACCRUAL_DELAY_MS      |      | 1000            | registration to final status                 |
| ACCRUAL_WORKERS       |      | 2               | HTTP worker processes                        |
| ACCRUAL_DB_WAIT_S     |      | 30              | how long to wait for the database            |
| ACCRUAL_RUN_DIR       |      | /tmp/accrual-...  | this instance's files (metrics)              |
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from actors.runtime.config import (
    Address,
    env_int,
    env_wins,
    parse_address,
    parse_database_uri,
    parse_service_args,
    service_parser,
)

__all__ = ["PROGRAM", "Config", "from_env"]

PROGRAM = "accrual"
DEFAULT_ADDRESS = "localhost:8091"


@dataclass(frozen=True)
class Config:
    address: Address
    database_uri: str
    rate_limit: int  # per minute; 0: none
    delay_s: float
    workers: int
    db_wait_s: int
    run_dir: Path

    def child_env(self) -> dict[str, str]:
        """The settled values the HTTP workers read back with from_env."""
        return {
            "RUN_ADDRESS": str(self.address),
            "DATABASE_URI": self.database_uri,
            "ACCRUAL_RATE_LIMIT": str(self.rate_limit),
            "ACCRUAL_DELAY_MS": str(int(self.delay_s * 1000)),
        }


def from_env(environ: Mapping[str, str] | None = None, argv: Sequence[str] | None = None) -> Config:
    """Settings from flags and environment; the environment wins.

    Raises:
        ConfigError: one line naming the variable or flag that is wrong.
    """
    environ = os.environ if environ is None else environ
    parser = service_parser(PROGRAM, "The accrual system (a development double).", DEFAULT_ADDRESS)
    args = parse_service_args(parser, argv)
    address_text, source = env_wins(environ, "RUN_ADDRESS", args.address, DEFAULT_ADDRESS)
    address = parse_address(address_text, "RUN_ADDRESS" if source != "flag" else "-a", PROGRAM)
    database_text, source = env_wins(environ, "DATABASE_URI", args.database, "")
    database = parse_database_uri(
        database_text, "DATABASE_URI" if source != "flag" else "-d", PROGRAM
    )
    host = address.host.replace(":", "_")
    return Config(
        address=address,
        database_uri=database,
        rate_limit=env_int(environ, "ACCRUAL_RATE_LIMIT", 0, 0, 10**9, PROGRAM),
        delay_s=env_int(environ, "ACCRUAL_DELAY_MS", 1000, 0, 3_600_000, PROGRAM) / 1000,
        workers=env_int(environ, "ACCRUAL_WORKERS", 2, 1, 64, PROGRAM),
        db_wait_s=env_int(environ, "ACCRUAL_DB_WAIT_S", 30, 0, 3600, PROGRAM),
        run_dir=Path(
            environ.get("ACCRUAL_RUN_DIR", "").strip()
            or Path(tempfile.gettempdir()) / f"accrual-{os.getuid()}-{host}-{address.port}"
        ),
    )
