"""The `segments` command: wait for the database, migrate, run the reaper and the HTTP server.

    segments [-a HOST:PORT] [-d postgresql://...]

RUN_ADDRESS and DATABASE_URI win over the flags. Exit statuses: 0 after SIGTERM/SIGINT;
1 the database stayed unreachable (one line naming DATABASE_URI), a migration failed, or
a child kept dying at start; 2 a malformed setting (one line naming it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import gunicorn_child
from actors.runtime.logs import setup_logging
from actors.runtime.pg.startup import prepare_database
from actors.runtime.supervisor import Child, Supervisor
from actors.segments.config import PROGRAM, Config
from actors.segments.store import SCHEMA_DIR

__all__ = ["children", "main"]

log = logging.getLogger("segments")


def children(config: Config, environ: dict[str, str]) -> list[Child]:
    """The reaper and gunicorn, with the resolved settings in their environment."""
    env = config.child_env(environ)
    return [
        Child("reaper", [sys.executable, "-m", "actors.segments.reaper"], env),
        gunicorn_child(
            "http",
            app="web.segments.app:get_app()",
            bind=str(config.address),
            workers=config.http_workers,
            env=env,
            title="segments: http",
            metrics_dir=config.run_dir / "metrics",
        ),
    ]


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_env(os.environ, argv)
    setup_logging("segments")
    if not prepare_database(PROGRAM, config.database_uri, SCHEMA_DIR, config.db_wait_s):
        return 1
    config.run_dir.mkdir(parents=True, exist_ok=True)
    log.info(
        "serving on http://%s (database %s)", config.address, config.database_uri.rpartition("@")[2]
    )
    return Supervisor(PROGRAM, children(config, dict(os.environ))).run()


if __name__ == "__main__":
    sys.exit(main())
