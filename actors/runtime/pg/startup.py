"""What a PostgreSQL service's command does once its settings are read.

Every service's console command does the same steps, so they live here: wait
for the database within a bounded time, apply the service's numbered
migrations (under an advisory lock, so two instances may start at once), and
say in one line what went wrong if either fails; then hold the instance's
lock in its run dir and supervise its children, saying once when HTTP answers.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from actors.runtime.config import ServiceSettings, reports_config_errors
from actors.runtime.logs import setup_logging
from actors.runtime.pg.connect import DatabaseUnavailable, wait_for_database
from actors.runtime.pg.migrate import MigrationError, migrate
from actors.runtime.ready import ReadyAnnouncer
from actors.runtime.supervisor import Child, Supervisor, exclusive_lock
from actors.runtime.titles import set_title

__all__ = ["prepare_database", "run_service", "console_command"]

S = TypeVar("S", bound=ServiceSettings)


async def _prepare(
    dsn: str, program: str, schema_dir: Path, wait_s: float, log: logging.Logger
) -> list[str]:
    await wait_for_database(dsn, timeout_s=wait_s, log=log)
    return await migrate(dsn, program, schema_dir)


def prepare_database(
    program: str, dsn: str, schema_dir: Path, wait_s: float, source: str = "DATABASE_URI"
) -> bool:
    """Wait for the database and migrate ``program``'s schema.

    ``source`` names where the DSN came from (the variable or the flag), for the
    one line said when the database stays unreachable.

    Returns:
        True when the schema is current; False after printing one line to stderr
        (the database stayed unreachable, naming ``source``, or a migration failed).
    """
    log = logging.getLogger(program)
    try:
        applied = asyncio.run(_prepare(dsn, program, schema_dir, wait_s, log))
    except DatabaseUnavailable as exc:
        print(f"{program}: {source}: {exc}", file=sys.stderr, flush=True)
        return False
    except MigrationError as exc:
        print(f"{program}: migration failed: {exc}", file=sys.stderr, flush=True)
        return False
    if applied:
        log.info("schema migrated: %s", ", ".join(applied))
    else:
        log.info("schema is current")
    return True


def run_service(
    settings: S,
    environ: Mapping[str, str],
    schema_dir: Path,
    children: Callable[[S, dict[str, str]], list[Child]],
    say_what_starts: Callable[[S, logging.Logger], None],
) -> int:
    """Everything a PostgreSQL service's console command does once its settings are read.

    Sets up logging, waits for the database and migrates, takes
    ``<run_dir>/supervisor.lock``, lets ``say_what_starts`` log what starts (only now, so
    an unreachable database stays the one line on stderr), then supervises
    ``children(settings, env)``: ``env`` is ``environ`` with ``settings.child_env()`` over
    it, so every child reads the settled values back. The children are made only once
    this instance holds the lock (making a gunicorn child wipes its metrics files, which
    a running instance on the same address still writes). The supervisor logs
    ``<program> is ready on <url>`` once HTTP answers, and only then starts the actor
    children (see ``_actors_after_http``).

    Returns:
        The exit status: 0 after SIGTERM/SIGINT; 1 when the database stayed
        unreachable (one line naming DATABASE_URI or -d), a migration failed or a child
        kept dying at start. (A malformed setting is 2, from ``reports_config_errors``.)

    Raises:
        SystemExit: another instance holds the run dir (one line naming its pid).
    """
    program = settings.program
    log = setup_logging(program)
    set_title(f"{program}: supervisor {settings.address}")
    if not prepare_database(
        program, settings.database_uri, schema_dir, settings.db_wait_s, settings.database_source
    ):
        return 1
    lock = exclusive_lock(
        settings.run_dir / "supervisor.lock",
        f"{program}: an instance on {settings.address} is already running "
        f"(pid {{pid}}); give it another RUN_ADDRESS",
    )
    try:
        say_what_starts(settings, log)
        ready = ReadyAnnouncer(program, [settings.url], log)
        env = {**environ, **settings.child_env()}
        kids = _actors_after_http(children(settings, env), ready)
        return Supervisor(program, kids, on_tick=ready).run()
    finally:
        lock.close()


def _actors_after_http(children: list[Child], ready: ReadyAnnouncer) -> list[Child]:
    """The children, the actors among them (``actor_child``: those with a liveness probe)
    made to start once HTTP answers.

    NOTE: no answer waits for an actor (their work is queued in the database, and a
    restarted actor catches up), but their starts compete with gunicorn's for the CPU:
    measured after a SIGKILL of the supervisor (``bench.chaos.outage``), HTTP answered
    2xx again sooner with the actors started after it (figures in the README).
    """
    for child in children:
        if child.liveness is not None and child.start_when is None:
            child.start_when = ready.said
    return children


class ConsoleMain(Protocol):
    """A console command's entry point, as ``[project.scripts]`` calls it."""

    def __call__(self, argv: Sequence[str] | None = None) -> int: ...


def console_command(
    read_config: Callable[[Mapping[str, str], Sequence[str] | None], S],
    environ: Mapping[str, str],
    schema_dir: Path,
    children: Callable[[S, dict[str, str]], list[Child]],
    say_what_starts: Callable[[S, logging.Logger], None],
) -> ConsoleMain:
    """A service's console command, ``main(argv=None)``: read its config from ``environ``
    and ``argv`` (None: sys.argv[1:]), then ``run_service``.

    The command's exit status: 0 after SIGTERM/SIGINT; 1 when the database stays
    unreachable, a migration fails, a child keeps dying at start or another instance
    holds the address; 2 for a malformed setting (one line naming it).
    """

    @reports_config_errors
    def main(argv: Sequence[str] | None = None) -> int:
        settings = read_config(environ, argv)
        return run_service(settings, environ, schema_dir, children, say_what_starts)

    return main
