"""The `balances` command: wait for the database, migrate, run the workers and HTTP.

    balances [-a HOST:PORT] [-d postgresql://...]

Children, in start order: BALANCES_WORKERS worker actors (actors.balances.worker),
then gunicorn serving web.balances.app on RUN_ADDRESS. RUN_ADDRESS and DATABASE_URI
win over the flags. It logs `balances is ready on http://HOST:PORT` once HTTP
answers. Exit statuses: 0 after SIGTERM/SIGINT; 1 the database stayed unreachable
(one line naming DATABASE_URI), a migration failed, a child kept dying at start, or
an instance already runs on this address; 2 a malformed setting (one line naming it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from actors.balances.config import PROGRAM, Config
from actors.balances.store import SCHEMA_DIR
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import run_service
from actors.runtime.supervisor import Child

__all__ = ["children", "say_what_starts", "main"]

log = logging.getLogger(PROGRAM)


def children(config: Config) -> list[Child]:
    """The worker actors, then the HTTP server; they read the resolved settings."""
    env = {**os.environ, **config.child_env()}
    workers = [
        Child(f"worker-{i}", [sys.executable, "-m", "actors.balances.worker", str(i)], env)
        for i in range(config.workers)
    ]
    http = http_child(config, "web.balances.app:get_app()", config.http_workers, env)
    return [*workers, http]


def say_what_starts(config: Config) -> None:
    """Where it listens and how many workers of each kind (said once the database is ready)."""
    log.info(
        "starting on %s: %d worker actors, %d HTTP workers",
        config.url,
        config.workers,
        config.http_workers,
    )


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_env(os.environ, argv)
    return run_service(config, SCHEMA_DIR, children, say_what_starts)


if __name__ == "__main__":
    sys.exit(main())
