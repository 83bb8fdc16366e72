"""What a PostgreSQL service does before its supervisor starts: wait, then migrate.

Every service's console command does the same two steps, so they live here:
wait for the database within a bounded time, apply the service's numbered
migrations (under an advisory lock, so two instances may start at once), and
say in one line what went wrong if either fails.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from actors.runtime.pg.connect import DatabaseUnavailable, wait_for_database
from actors.runtime.pg.migrate import MigrationError, migrate

__all__ = ["prepare_database"]


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
