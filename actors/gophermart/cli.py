"""The `gophermart` command: wait for the database, migrate, run the poller and HTTP.

    gophermart [-a HOST:PORT] [-d postgresql://...] [-r http://accrual:port]

RUN_ADDRESS, DATABASE_URI and ACCRUAL_SYSTEM_ADDRESS win over the flags. It logs
`gophermart is ready on http://HOST:PORT` once HTTP answers. Exit statuses: 0 after
SIGTERM/SIGINT; 1 the database stayed unreachable (one line naming DATABASE_URI), a
migration failed, a child kept dying at start, or an instance already runs on this
address; 2 a malformed setting (one line naming it).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence

from actors.gophermart.config import PROGRAM, Config
from actors.gophermart.store import SCHEMA_DIR
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import gunicorn_child
from actors.runtime.logs import setup_logging
from actors.runtime.startup import run_service
from actors.runtime.supervisor import Child

__all__ = ["children", "main"]

log = logging.getLogger(PROGRAM)


def children(config: Config) -> list[Child]:
    """The accrual poller and gunicorn, with the settled settings in their environment."""
    env = {**os.environ, **config.child_env()}
    return [
        Child("poller", [sys.executable, "-m", "actors.gophermart.poller"], env),
        gunicorn_child(
            "http",
            app="web.gophermart.app:get_app()",
            bind=str(config.address),
            workers=config.workers,
            env=env,
            title=f"{PROGRAM}: http",
            metrics_dir=config.run_dir / "metrics",
        ),
    ]


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_env(os.environ, argv)
    setup_logging(PROGRAM)
    log.info("starting on %s, accrual system %s", config.url, config.accrual_url)
    if config.secret_generated:
        log.warning(
            "GOPHERMART_SECRET is not set: signing tokens with a random secret; "
            "they die with this process and no other instance accepts them"
        )
    return run_service(config, SCHEMA_DIR, config.db_wait_s, functools.partial(children, config))


if __name__ == "__main__":
    sys.exit(main())
