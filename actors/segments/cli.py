"""The `segments` command: the reaper actor beside the HTTP server.

    segments [-a HOST:PORT] [-d postgresql://...]

The reaper ends memberships whose TTL ran out; HTTP workers nudge it when they add
one. Start-up, exit statuses and the ready line are every PostgreSQL service's:
``actors.runtime.pg.startup.run_service``.
"""

from __future__ import annotations

import logging
import os
import sys

from actors.runtime.actor_child import actor_child
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import console_command
from actors.runtime.supervisor import Child
from actors.segments.config import Config
from actors.segments.store import SCHEMA_DIR

__all__ = ["children", "say_what_starts", "main"]


def children(config: Config, env: dict[str, str]) -> list[Child]:
    """The reaper (probed for liveness), then gunicorn."""
    reaper = actor_child(config, "reaper", "actors.segments.reaper", env)
    return [reaper, http_child(config, "web.segments.app:get_app()", config.http_workers, env)]


def say_what_starts(config: Config, log: logging.Logger) -> None:
    """Where it listens and its database host (no user or password in the log)."""
    log.info("starting on %s (database %s)", config.url, config.database_uri.rpartition("@")[2])


main = console_command(Config.from_env, os.environ, SCHEMA_DIR, children, say_what_starts)

if __name__ == "__main__":
    sys.exit(main())
