"""segments' settings: flags and environment (the environment wins), read once.

RUN_ADDRESS/-a, DATABASE_URI/-d, SEGMENTS_RUN_DIR and SEGMENTS_DB_WAIT_S follow the
shared rules of actors.runtime.config; the fields below name the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from actors.runtime.config import (
    ConfigError,
    ServiceSettings,
    common_settings,
    env_int,
    service_parser,
)

__all__ = ["DEFAULT_ADDRESS", "PROGRAM", "Config", "ConfigError"]

PROGRAM = "segments"
DEFAULT_ADDRESS = "localhost:8100"
DESCRIPTION = (
    "User segments for experiments: an HTTP API on PostgreSQL, with TTL, percent "
    "rollout and a monthly history report."
)


@dataclass(frozen=True)
class Config(ServiceSettings):
    """Everything segments' supervisor, reaper and HTTP workers need."""

    http_workers: int
    """SEGMENTS_HTTP_WORKERS (default 2): gunicorn workers."""

    @property
    def reaper_endpoint(self) -> str:
        """The reaper's ROUTER: HTTP workers nudge it when they add an expiry."""
        return self.actor_endpoint("reaper")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> Config:
        """Read -a, -d (argv; None: sys.argv[1:]) and the SEGMENTS_* variables; ConfigError
        names a bad one."""
        parser = service_parser(PROGRAM, DESCRIPTION, DEFAULT_ADDRESS)
        shared, _ = common_settings(parser, environ, argv)
        return cls(
            **shared.shared_fields(),
            http_workers=env_int(environ, "SEGMENTS_HTTP_WORKERS", 2, 1, 64, PROGRAM),
        )
