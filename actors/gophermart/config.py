"""gophermart's settings: flags and environment (the environment wins), read once.

| variable                 | flag | default          | meaning                                  |
|--------------------------|------|------------------|------------------------------------------|
| RUN_ADDRESS              | -a   | localhost:8080   | HTTP listen address                      |
| DATABASE_URI             | -d   | (required)       | PostgreSQL URI                           |
| ACCRUAL_SYSTEM_ADDRESS   | -r   | (required)       | accrual system base URL                  |
| GOPHERMART_SECRET        |      | random per start | JWT signing secret (HS256)               |
| GOPHERMART_TOKEN_TTL_S   |      | 86400            | token lifetime, seconds                  |
| GOPHERMART_WORKERS       |      | 2                | HTTP worker processes                    |
| GOPHERMART_POLL_INFLIGHT |      | 8                | accrual requests in flight at most       |
| GOPHERMART_LEASE_S       |      | 30               | how long a poller holds claimed orders   |
| GOPHERMART_IDLE_MS       |      | 500              | poller's longest sleep with nothing due  |
| GOPHERMART_DB_WAIT_S     |      | 30               | how long to wait for the database        |
"""

from __future__ import annotations

import os
import secrets
import socket
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

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

__all__ = ["PROGRAM", "Config", "from_env", "parse_accrual_url"]

PROGRAM = "gophermart"
DEFAULT_ADDRESS = "localhost:8080"
SECRET_MIN_BYTES = 16


@dataclass(frozen=True)
class Config:
    address: Address
    database_uri: str
    accrual_url: str  # scheme://host:port, no trailing slash
    secret: str
    secret_generated: bool
    token_ttl_s: int
    workers: int
    poll_inflight: int
    lease_s: int
    idle_ms: int
    db_wait_s: int
    run_dir: Path

    @property
    def poller_endpoint(self) -> str:
        """The poller's private ZMQ endpoint: one per RUN_ADDRESS, so two instances on one
        machine never share it."""
        return ipc_endpoint(self.run_dir, "poller")

    @property
    def lease_owner(self) -> str:
        """Who holds a lease: this instance (machine and address), the same name after a
        restart, so a restarted instance frees what it held when it died."""
        return f"{socket.gethostname()}/{self.address}"

    def child_env(self) -> dict[str, str]:
        """What the HTTP workers and the poller need (settled values, secret included)."""
        return {
            "RUN_ADDRESS": str(self.address),
            "DATABASE_URI": self.database_uri,
            "ACCRUAL_SYSTEM_ADDRESS": self.accrual_url,
            "GOPHERMART_SECRET": self.secret,
            "GOPHERMART_TOKEN_TTL_S": str(self.token_ttl_s),
            "GOPHERMART_POLL_INFLIGHT": str(self.poll_inflight),
            "GOPHERMART_LEASE_S": str(self.lease_s),
            "GOPHERMART_IDLE_MS": str(self.idle_ms),
            "GOPHERMART_RUN_DIR": str(self.run_dir),
        }


def parse_accrual_url(value: str, name: str) -> str:
    """`http://host:port` (a bare host:port gets http://); https is accepted too."""
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
        raise ConfigError(f"{name}={value!r} is not a base URL like http://localhost:8091", PROGRAM)
    try:
        _ = parts.port
    except ValueError:
        raise ConfigError(f"{name}={value!r} has a bad port", PROGRAM) from None
    return f"{parts.scheme}://{parts.netloc}"


def _run_dir(environ: Mapping[str, str], address: Address) -> Path:
    given = environ.get("GOPHERMART_RUN_DIR", "").strip()
    if given:
        return Path(given)
    # NOTE: under the temp dir, named by uid and address: short enough for an ipc://
    # path (108 bytes), private to this instance.
    host = address.host.replace(":", "_")
    return Path(tempfile.gettempdir()) / f"gophermart-{os.getuid()}-{host}-{address.port}"


def from_env(environ: Mapping[str, str] | None = None, argv: Sequence[str] | None = None) -> Config:
    """Settings from flags and environment; the environment wins.

    Raises:
        ConfigError: one line naming the variable or flag that is wrong.
    """
    environ = os.environ if environ is None else environ
    parser = service_parser(PROGRAM, "The gophermart loyalty service.", DEFAULT_ADDRESS)
    parser.add_argument(
        "-r",
        dest="accrual",
        metavar="URL",
        help="accrual system base URL (ACCRUAL_SYSTEM_ADDRESS wins)",
    )
    args = parse_service_args(parser, argv)
    address_text, source = env_wins(environ, "RUN_ADDRESS", args.address, DEFAULT_ADDRESS)
    address = parse_address(address_text, "RUN_ADDRESS" if source != "flag" else "-a", PROGRAM)
    database_text, source = env_wins(environ, "DATABASE_URI", args.database, "")
    database = parse_database_uri(
        database_text, "DATABASE_URI" if source != "flag" else "-d", PROGRAM
    )
    accrual_text, source = env_wins(environ, "ACCRUAL_SYSTEM_ADDRESS", args.extra.accrual, "")
    if not accrual_text:
        raise ConfigError(
            "ACCRUAL_SYSTEM_ADDRESS is not set: give the accrual system's URL,"
            " e.g. http://localhost:8091 (or -r)",
            PROGRAM,
        )
    accrual = parse_accrual_url(
        accrual_text, "ACCRUAL_SYSTEM_ADDRESS" if source != "flag" else "-r"
    )
    secret = env_str(environ, "GOPHERMART_SECRET", "")
    if secret and len(secret.encode()) < SECRET_MIN_BYTES:
        raise ConfigError(f"GOPHERMART_SECRET must be at least {SECRET_MIN_BYTES} bytes", PROGRAM)
    return Config(
        address=address,
        database_uri=database,
        accrual_url=accrual,
        secret=secret or secrets.token_urlsafe(32),
        secret_generated=not secret,
        token_ttl_s=env_int(environ, "GOPHERMART_TOKEN_TTL_S", 86400, 1, 365 * 86400, PROGRAM),
        workers=env_int(environ, "GOPHERMART_WORKERS", 2, 1, 64, PROGRAM),
        poll_inflight=env_int(environ, "GOPHERMART_POLL_INFLIGHT", 8, 1, 256, PROGRAM),
        lease_s=env_int(environ, "GOPHERMART_LEASE_S", 30, 1, 3600, PROGRAM),
        idle_ms=env_int(environ, "GOPHERMART_IDLE_MS", 500, 10, 600_000, PROGRAM),
        db_wait_s=env_int(environ, "GOPHERMART_DB_WAIT_S", 30, 0, 3600, PROGRAM),
        run_dir=_run_dir(environ, address),
    )
