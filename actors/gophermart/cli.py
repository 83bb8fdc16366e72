"""The `gophermart` command: wait for the database, migrate, run the poller and HTTP.

    gophermart [-a HOST:PORT] [-d postgresql://...] [-r http://accrual:port]

RUN_ADDRESS, DATABASE_URI and ACCRUAL_SYSTEM_ADDRESS win over the flags. It logs
`gophermart is ready on http://HOST:PORT` once HTTP answers. Exit statuses: 0 after
SIGTERM/SIGINT; 1 the database stayed unreachable (one line naming DATABASE_URI), a
migration failed, a child kept dying at start, or an instance already runs on this
address; 2 a malformed setting (one line naming it).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from actors.gophermart.config import PROGRAM, Config
from actors.gophermart.store import SCHEMA_DIR
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import http_child
from actors.runtime.pg.startup import run_service
from actors.runtime.supervisor import Child

__all__ = ["children", "say_what_starts", "main"]

log = logging.getLogger(PROGRAM)


def children(config: Config) -> list[Child]:
    """The accrual poller and gunicorn, with the settled settings in their environment."""
    env = {**os.environ, **config.child_env()}
    return [
        Child("poller", [sys.executable, "-m", "actors.gophermart.poller"], env),
        http_child(config, "web.gophermart.app:get_app()", config.workers, env),
    ]


def say_what_starts(config: Config) -> None:
    """Where it listens and which accrual system it asks (said once the database is ready)."""
    log.info("starting on %s, accrual system %s", config.url, config.accrual_url)
    if config.secret_generated:
        log.warning(
            "GOPHERMART_SECRET is not set: signing tokens with a random secret; "
            "they die with this process and no other instance accepts them"
        )


@reports_config_errors
def main(argv: Sequence[str] | None = None) -> int:
    config = Config.from_env(os.environ, argv)
    return run_service(config, SCHEMA_DIR, children, say_what_starts)


if __name__ == "__main__":
    sys.exit(main())
