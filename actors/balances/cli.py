"""The `balances` command: BALANCES_WORKERS worker actors beside the HTTP server.

    balances [-a HOST:PORT] [-d postgresql://...]

Each worker leases shards of users and applies their queued tasks in order; HTTP
workers nudge the owner of a shard when they queue a task. Start-up, exit statuses and
the ready line are every PostgreSQL service's: ``actors.runtime.pg.startup.run_service``.
"""

from __future__ import annotations

import logging
import os
import sys

from actors.balances.config import Config
from actors.balances.store import SCHEMA_DIR
from actors.runtime.actor_child import actor_child
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import console_command
from actors.runtime.supervisor import Child

__all__ = ["children", "say_what_starts", "main"]


def children(config: Config, env: dict[str, str]) -> list[Child]:
    """The worker actors (each probed for liveness), then gunicorn."""
    workers = [
        actor_child(config, config.worker_name(i), "actors.balances.worker", env, str(i))
        for i in range(config.workers)
    ]
    return [*workers, http_child(config, "web.balances.app:get_app()", config.http_workers, env)]


def say_what_starts(config: Config, log: logging.Logger) -> None:
    """Where it listens and how many workers of each kind."""
    log.info(
        "starting on %s: %d worker actors, %d HTTP workers",
        config.url,
        config.workers,
        config.http_workers,
    )


main = console_command(Config.from_env, os.environ, SCHEMA_DIR, children, say_what_starts)

if __name__ == "__main__":
    sys.exit(main())
