"""The `accrual` command: wait for the database, migrate, run the HTTP server.

    accrual [-a HOST:PORT] [-d postgresql://...]

RUN_ADDRESS and DATABASE_URI win over the flags. It logs `accrual is ready on
http://HOST:PORT` once HTTP answers. Exit statuses: 0 after SIGTERM/SIGINT; 1 the
database stayed unreachable (one line naming DATABASE_URI), a migration failed, the
server kept dying at start, or an instance already runs on this address; 2 a
malformed setting (one line naming it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from actors.accrual.config import PROGRAM, Config
from actors.accrual.store import SCHEMA_DIR
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import run_service
from actors.runtime.supervisor import Child

__all__ = ["children", "say_what_starts", "main"]

log = logging.getLogger(PROGRAM)


def children(config: Config) -> list[Child]:
    """gunicorn, with the settled settings in its environment (no actor: an order's
    outcome is computed when it is registered and revealed by the clock)."""
    env = {**os.environ, **config.child_env()}
    return [http_child(config, "web.accrual.app:get_app()", config.workers, env)]


def say_what_starts(config: Config) -> None:
    """Where it listens, its rate limit and its delay (said once the database is ready)."""
    limit = f"{config.rate_limit} requests a minute" if config.rate_limit else "no rate limit"
    log.info("starting on %s (%s, orders final after %.1f s)", config.url, limit, config.delay_s)


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_env(os.environ, argv)
    return run_service(config, SCHEMA_DIR, children, say_what_starts)


if __name__ == "__main__":
    sys.exit(main())
