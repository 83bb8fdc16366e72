"""PostgreSQL for services: connect and wait, migrate, a lazy pool, startup, a private server.

Built on asyncpg (binary protocol, prepared statements cached per connection; see
bench/pg_driver.py for the measurement against psycopg 3). Every service does, at start:

    dsn = normalize_dsn(config.database_uri)
    await wait_for_database(dsn, timeout_s=30.0)     # DatabaseUnavailable after that
    await migrate(dsn, "segments", SCHEMA_DIR)       # schema/NNN_name.sql, once each
    pool = LazyPool(dsn)                             # lazy: opens in the worker's loop
    async with pool.acquire() as conn:
        ...
    await pool.close()

(a console command does the first two with ``prepare_database``). One module a job:
``connect`` (DSN, wait, outage errors), ``migrate``, ``pool``, ``startup``, and
``server``, a private PostgreSQL cluster for `make run`, tests and benches, with
``installation`` (its binaries, the user it runs as under root) and ``foreground``, its
Procfile process (``python -m actors.runtime.pg.foreground``). Those three are imported
by their own path, not re-exported here, so running one as a module finds it not yet
imported.

NOTE: nothing here connects at import time or in a gunicorn master: the pool opens in
the event loop of the worker that first uses it. The runtime reads no environment
variable; services pass the DSN.
"""

from actors.runtime.pg.connect import (
    TRANSIENT_ERRORS,
    DatabaseUnavailable,
    host_port,
    normalize_dsn,
    transient_errors,
    wait_for_database,
)
from actors.runtime.pg.migrate import MigrationError, migrate, migration_files
from actors.runtime.pg.pool import LazyPool
from actors.runtime.pg.startup import prepare_database

__all__ = [
    "DatabaseUnavailable",
    "LazyPool",
    "MigrationError",
    "TRANSIENT_ERRORS",
    "host_port",
    "migrate",
    "migration_files",
    "normalize_dsn",
    "prepare_database",
    "transient_errors",
    "wait_for_database",
]
