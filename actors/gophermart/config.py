"""gophermart's settings: flags and environment (the environment wins), read once.

RUN_ADDRESS/-a, DATABASE_URI/-d, GOPHERMART_RUN_DIR and GOPHERMART_DB_WAIT_S follow
the shared rules of actors.runtime.config; the fields below name the rest. The
supervisor hands its children ``child_env()`` over its own environment, so the
poller and the HTTP workers read back the same values (the generated secret
included).
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from actors.runtime.config import (
    ConfigError,
    ServiceSettings,
    common_settings,
    env_int,
    env_str,
    env_wins,
    service_parser,
)

__all__ = ["PROGRAM", "Config", "parse_accrual_url"]

PROGRAM = "gophermart"
DEFAULT_ADDRESS = "localhost:8080"
DESCRIPTION = "The gophermart loyalty service."
SECRET_MIN_BYTES = 16


@dataclass(frozen=True)
class Config(ServiceSettings):
    """Everything gophermart's supervisor, poller and HTTP workers need."""

    accrual_url: str
    """ACCRUAL_SYSTEM_ADDRESS or -r (required): the accrual system, scheme://host:port."""
    secret: str
    """GOPHERMART_SECRET (at least 16 bytes; random per start when unset): signs tokens."""
    secret_generated: bool
    """True when GOPHERMART_SECRET was unset: tokens die with this process."""
    token_ttl_s: int
    """GOPHERMART_TOKEN_TTL_S (default 86400): a token's lifetime."""
    workers: int
    """GOPHERMART_WORKERS (default 2): HTTP worker processes."""
    poll_inflight: int
    """GOPHERMART_POLL_INFLIGHT (default 8): accrual requests in flight at most."""
    lease_s: int
    """GOPHERMART_LEASE_S (default 30): how long a poller holds the orders it claimed."""
    idle_ms: int
    """GOPHERMART_IDLE_MS (default 500): the poller's longest sleep with nothing due."""

    @property
    def poller_endpoint(self) -> str:
        """Where the poller answers its supervisor's liveness Pings (and nothing else)."""
        return self.actor_endpoint("poller")

    @property
    def lease_owner(self) -> str:
        """Who holds a lease: this instance (machine and address), the same name after a
        restart, so a restarted instance frees what it held when it died."""
        return f"{socket.gethostname()}/{self.address}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> Config:
        """Read -a, -d, -r (argv; None: sys.argv[1:]) and the variables, which win.

        Raises:
            ConfigError: one line naming the variable or flag that is wrong.
        """
        parser = service_parser(PROGRAM, DESCRIPTION, DEFAULT_ADDRESS)
        parser.add_argument(
            "-r",
            dest="accrual",
            metavar="URL",
            help="accrual system base URL (ACCRUAL_SYSTEM_ADDRESS wins)",
        )
        shared, args = common_settings(parser, environ, argv)
        accrual_text, source = env_wins(environ, "ACCRUAL_SYSTEM_ADDRESS", args.accrual, "")
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
            raise ConfigError(
                f"GOPHERMART_SECRET must be at least {SECRET_MIN_BYTES} bytes", PROGRAM
            )
        return cls(
            **shared.shared_fields(),
            accrual_url=accrual,
            secret=secret or secrets.token_urlsafe(32),
            secret_generated=not secret,
            token_ttl_s=env_int(environ, "GOPHERMART_TOKEN_TTL_S", 86400, 1, 365 * 86400, PROGRAM),
            workers=env_int(environ, "GOPHERMART_WORKERS", 2, 1, 64, PROGRAM),
            poll_inflight=env_int(environ, "GOPHERMART_POLL_INFLIGHT", 8, 1, 256, PROGRAM),
            lease_s=env_int(environ, "GOPHERMART_LEASE_S", 30, 1, 3600, PROGRAM),
            idle_ms=env_int(environ, "GOPHERMART_IDLE_MS", 500, 10, 600_000, PROGRAM),
        )

    def child_env(self) -> dict[str, str]:
        """The shared overrides plus gophermart's settled values (the secret included)."""
        return {
            **super().child_env(),
            "ACCRUAL_SYSTEM_ADDRESS": self.accrual_url,
            "GOPHERMART_SECRET": self.secret,
            "GOPHERMART_TOKEN_TTL_S": str(self.token_ttl_s),
            "GOPHERMART_POLL_INFLIGHT": str(self.poll_inflight),
            "GOPHERMART_LEASE_S": str(self.lease_s),
            "GOPHERMART_IDLE_MS": str(self.idle_ms),
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
