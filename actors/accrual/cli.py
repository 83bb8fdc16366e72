"""The `accrual` command: HTTP only, no actor beside it.

    accrual [-a HOST:PORT] [-d postgresql://...]

An order's outcome is computed when it is registered and revealed by the clock
(ACCRUAL_DELAY_MS), so nothing runs between requests. Start-up, exit statuses and the
ready line are every PostgreSQL service's: ``actors.runtime.pg.startup.run_service``.
"""

from __future__ import annotations

import logging
import os
import sys

from actors.accrual.config import Config
from actors.accrual.store import SCHEMA_DIR
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import console_command
from actors.runtime.supervisor import Child

__all__ = ["children", "say_what_starts", "main"]


def children(config: Config, env: dict[str, str]) -> list[Child]:
    """gunicorn alone."""
    return [http_child(config, "web.accrual.app:get_app()", config.workers, env)]


def say_what_starts(config: Config, log: logging.Logger) -> None:
    """Where it listens, its rate limit and its delay."""
    limit = f"{config.rate_limit} requests a minute" if config.rate_limit else "no rate limit"
    log.info("starting on %s (%s, orders final after %.1f s)", config.url, limit, config.delay_s)


main = console_command(Config.from_env, os.environ, SCHEMA_DIR, children, say_what_starts)

if __name__ == "__main__":
    sys.exit(main())
