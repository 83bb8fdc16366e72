"""The `gophermart` command: wait for the database, migrate, run the poller and HTTP.

    gophermart [-a HOST:PORT] [-d postgresql://...] [-r http://accrual:port]

RUN_ADDRESS, DATABASE_URI and ACCRUAL_SYSTEM_ADDRESS win over the flags. Exit statuses:
0 after SIGTERM/SIGINT; 1 the database stayed unreachable (one line naming
DATABASE_URI), a migration failed, or a child kept dying at start; 2 a malformed
setting (one line naming it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from actors.gophermart.config import PROGRAM, Config, from_env
from actors.gophermart.store import SCHEMA_DIR
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import gunicorn_child
from actors.runtime.logs import setup_logging
from actors.runtime.pg.startup import prepare_database
from actors.runtime.supervisor import Child, Supervisor

__all__ = ["children", "main"]

log = logging.getLogger(PROGRAM)


def children(config: Config, environ: dict[str, str]) -> list[Child]:
    """The accrual poller and gunicorn, with the settled settings in their environment."""
    env = {**environ, **config.child_env()}
    return [
        Child("poller", [sys.executable, "-m", "actors.gophermart.poller"], env),
        gunicorn_child(
            "http",
            app="web.gophermart.app:get_app()",
            bind=str(config.address),
            workers=config.workers,
            env=env,
            title="gophermart: http",
            metrics_dir=config.run_dir / "metrics",
        ),
    ]


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = from_env(os.environ, argv)
    setup_logging(PROGRAM)
    if not prepare_database(PROGRAM, config.database_uri, SCHEMA_DIR, config.db_wait_s):
        return 1
    if config.secret_generated:
        log.warning(
            "GOPHERMART_SECRET is not set: signing tokens with a random secret; "
            "they die with this process and no other instance accepts them"
        )
    config.run_dir.mkdir(parents=True, exist_ok=True)
    log.info("serving on http://%s, accrual system %s", config.address, config.accrual_url)
    return Supervisor(PROGRAM, children(config, dict(os.environ))).run()


if __name__ == "__main__":
    sys.exit(main())
