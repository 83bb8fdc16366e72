"""The `segments` command: wait for the database, migrate, run the reaper and the HTTP server.

    segments [-a HOST:PORT] [-d postgresql://...]

RUN_ADDRESS and DATABASE_URI win over the flags. It logs `segments is ready on
http://HOST:PORT` once HTTP answers. Exit statuses: 0 after SIGTERM/SIGINT; 1 the
database stayed unreachable (one line naming DATABASE_URI), a migration failed, a
child kept dying at start, or an instance already runs on this address; 2 a
malformed setting (one line naming it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import run_service
from actors.runtime.supervisor import Child
from actors.segments.config import PROGRAM, Config
from actors.segments.store import SCHEMA_DIR

__all__ = ["children", "say_what_starts", "main"]

log = logging.getLogger(PROGRAM)


def children(config: Config) -> list[Child]:
    """The reaper and gunicorn, with the resolved settings in their environment."""
    env = {**os.environ, **config.child_env()}
    return [
        Child("reaper", [sys.executable, "-m", "actors.segments.reaper"], env),
        http_child(config, "web.segments.app:get_app()", config.http_workers, env),
    ]


def say_what_starts(config: Config) -> None:
    """Where it listens and its database host (said once the database is ready)."""
    database = config.database_uri.rpartition("@")[2]  # no user or password in the log
    log.info("starting on %s (database %s)", config.url, database)


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_env(os.environ, argv)
    return run_service(config, SCHEMA_DIR, children, say_what_starts)


if __name__ == "__main__":
    sys.exit(main())
