"""The `gophermart` command: the accrual poller actor beside the HTTP server.

    gophermart [-a HOST:PORT] [-d postgresql://...] [-r http://accrual:port]

The poller asks the accrual system about every unfinished order; an upload on any
instance wakes it by a PostgreSQL NOTIFY. ACCRUAL_SYSTEM_ADDRESS wins over -r. Start-up, exit
statuses and the ready line are every PostgreSQL service's:
``actors.runtime.pg.startup.run_service``.
"""

from __future__ import annotations

import logging
import os
import sys

from actors.gophermart.config import Config
from actors.gophermart.store import SCHEMA_DIR
from actors.runtime.actor_child import actor_child
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import console_command
from actors.runtime.supervisor import Child

__all__ = ["children", "say_what_starts", "main"]


def children(config: Config, env: dict[str, str]) -> list[Child]:
    """The poller (probed for liveness), then gunicorn."""
    poller = actor_child(config, "poller", "actors.gophermart.poller", env)
    return [poller, http_child(config, "web.gophermart.app:get_app()", config.workers, env)]


def say_what_starts(config: Config, log: logging.Logger) -> None:
    """Where it listens, which accrual system it asks, and a warning for a random secret."""
    log.info("starting on %s, accrual system %s", config.url, config.accrual_url)
    if config.secret_generated:
        log.warning(
            "GOPHERMART_SECRET is not set: signing tokens with a random secret; "
            "they die with this process and no other instance accepts them"
        )


main = console_command(Config.from_env, os.environ, SCHEMA_DIR, children, say_what_starts)

if __name__ == "__main__":
    sys.exit(main())
