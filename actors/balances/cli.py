"""`balances`: the console command. Waits for the database, migrates, supervises.

Children, in start order: BALANCES_WORKERS worker actors (actors.balances.worker),
then gunicorn serving web.balances.app on RUN_ADDRESS. The supervisor restarts a
child that dies; SIGTERM/SIGINT stop them all and exit 0.

Exit status 2 with one line naming the variable or flag for a malformed setting,
1 with one line naming DATABASE_URI when the database stays unreachable.
"""

from __future__ import annotations

import sys

from actors.balances.config import PROGRAM, BalancesConfig, load
from actors.balances.store import SCHEMA_DIR
from actors.runtime.base import set_title
from actors.runtime.config import reports_config_errors
from actors.runtime.gunicorn import gunicorn_child
from actors.runtime.logs import setup_logging
from actors.runtime.pg.startup import prepare_database
from actors.runtime.supervisor import Child, Supervisor, exclusive_lock

__all__ = ["children", "main"]


def children(config: BalancesConfig) -> list[Child]:
    """The worker actors, then the HTTP server; they read the resolved settings."""
    env = config.child_environment()
    python = sys.executable
    workers = [
        Child(f"worker-{i}", [python, "-m", "actors.balances.worker", str(i)], env)
        for i in range(config.workers)
    ]
    http = gunicorn_child(
        "http",
        "web.balances.app:get_app()",
        str(config.address),
        config.http_workers,
        env,
        f"{PROGRAM}: http {config.address}",
        metrics_dir=config.run_dir / "metrics",
    )
    return [*workers, http]


@reports_config_errors
def main(argv: list[str] | None = None) -> int:
    config = load(sys.argv[1:] if argv is None else argv)
    log = setup_logging(PROGRAM)
    set_title(f"{PROGRAM}: supervisor {config.address}")
    if not prepare_database(
        PROGRAM, config.database_uri, SCHEMA_DIR, config.db_wait_s, config.database_source
    ):
        return 1
    lock = exclusive_lock(
        config.run_dir / "supervisor.lock",
        f"{PROGRAM}: an instance on {config.address} is already running "
        f"(pid {{pid}}); give it another RUN_ADDRESS",
    )
    try:
        log.info(
            "%d worker actors, %d HTTP workers on http://%s",
            config.workers,
            config.http_workers,
            config.address,
        )
        return Supervisor(PROGRAM, children(config)).run()
    finally:
        lock.close()


if __name__ == "__main__":
    sys.exit(main())
