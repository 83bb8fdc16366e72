"""accrual's settings: flags and environment (the environment wins), read once.

RUN_ADDRESS/-a, DATABASE_URI/-d, ACCRUAL_RUN_DIR and ACCRUAL_DB_WAIT_S follow the
shared rules of actors.runtime.config; the fields below name the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from actors.runtime.config import ServiceSettings, common_settings, env_int, service_parser

__all__ = ["PROGRAM", "Config"]

PROGRAM = "accrual"
DEFAULT_ADDRESS = "localhost:8091"
DESCRIPTION = "The accrual system (a development double)."


@dataclass(frozen=True)
class Config(ServiceSettings):
    """Everything accrual's supervisor and HTTP workers need."""

    rate_limit: int
    """ACCRUAL_RATE_LIMIT (default 0, no limit): order GETs a minute, service-wide."""
    delay_s: float
    """ACCRUAL_DELAY_MS (default 1000): from an order's registration to its final status."""
    workers: int
    """ACCRUAL_WORKERS (default 2): HTTP worker processes."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], argv: Sequence[str] | None = None) -> Config:
        """Read -a, -d (argv; None: sys.argv[1:]) and the ACCRUAL_* variables; ConfigError
        names a bad one."""
        parser = service_parser(PROGRAM, DESCRIPTION, DEFAULT_ADDRESS)
        shared, _ = common_settings(parser, environ, argv)
        return cls(
            **shared.shared_fields(),
            rate_limit=env_int(environ, "ACCRUAL_RATE_LIMIT", 0, 0, 10**9, PROGRAM),
            delay_s=env_int(environ, "ACCRUAL_DELAY_MS", 1000, 0, 3_600_000, PROGRAM) / 1000,
            workers=env_int(environ, "ACCRUAL_WORKERS", 2, 1, 64, PROGRAM),
        )

    def child_env(self) -> dict[str, str]:
        """The shared overrides plus the values the HTTP workers read back."""
        return {
            **super().child_env(),
            "ACCRUAL_RATE_LIMIT": str(self.rate_limit),
            "ACCRUAL_DELAY_MS": str(round(self.delay_s * 1000)),
        }
