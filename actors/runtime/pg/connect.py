"""PostgreSQL for services: wait for the database, apply a service's migrations, errors.

Built on asyncpg (binary protocol, prepared statements cached per connection; see
bench/pg_driver.py for the measurement against psycopg 3). Every service does, at start:

    dsn = normalize_dsn(config.database_uri)
    await wait_for_database(dsn, timeout_s=30.0)     # DatabaseUnavailable after that
    await migrate(dsn, "segments", SCHEMA_DIR)       # schema/NNN_name.sql, once each
    pool = LazyPool(dsn)                             # actors.runtime.pgpool; lazy
    async with pool.acquire() as conn:
        ...
    await pool.close()

NOTE: nothing here connects at import time or in a gunicorn master: the pool opens in
the event loop of the worker that first uses it. The runtime reads no environment
variable; services pass the DSN.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

__all__ = [
    "DatabaseUnavailable",
    "TRANSIENT_ERRORS",
    "transient_errors",
    "MigrationError",
    "migrate",
    "normalize_dsn",
    "wait_for_database",
]

SCHEMES = ("postgresql", "postgres")
DEFAULT_PORT = 5432
WAIT_TIMEOUT_S = 30.0  # the services' documented bounded wait at start
CONNECT_TIMEOUT_S = 5.0  # one connection attempt (TCP + startup + auth)
RETRY_FIRST_S = 0.1  # backoff between attempts: doubles up to RETRY_MAX_S
RETRY_MAX_S = 1.0
LOG_EVERY_S = 5.0  # how often wait_for_database reports that it is still waiting
COMMAND_TIMEOUT_S = 5.0  # default per query of a pooled connection
ACQUIRE_TIMEOUT_S = 5.0  # waiting for a free pooled connection
CLOSE_TIMEOUT_S = 10.0  # graceful pool close, then terminate
MIGRATE_TIMEOUT_S = 120.0  # one migration file, also the wait for another instance's lock
MIGRATION_FILE = re.compile(r"^(\d+)_([A-Za-z0-9_-]+)\.sql$")

TRANSIENT_ERRORS = (
    asyncpg.PostgresConnectionError,  # 08xxx: the connection broke
    asyncpg.exceptions.OperatorInterventionError,  # 57xxx: shutdown, crash, starting, canceled
    asyncpg.InterfaceError,  # e.g. "the underlying connection is closed"
    # NOTE: asyncpg raises this ("cannot switch to state 12; another operation is in
    # progress") for a pooled connection whose server died mid-operation.
    asyncpg.exceptions.InternalClientError,
    asyncpg.TransactionRollbackError,  # serialization failure, deadlock: retry
    asyncio.TimeoutError,
    OSError,
)
"""The database is unreachable or busy now, not the request wrong: nothing the request did
is known to have committed; a service answers 503 with Retry-After (DatabaseUnavailable,
defined below, belongs with these: see ``transient_errors()``)."""

# Errors that waiting will not fix: wrong password, unknown role or database.
_FATAL = (asyncpg.InvalidAuthorizationSpecificationError, asyncpg.InvalidCatalogNameError)


def transient_errors() -> tuple[type[BaseException], ...]:
    """TRANSIENT_ERRORS and DatabaseUnavailable: what a request may meet during an outage."""
    return (DatabaseUnavailable, *TRANSIENT_ERRORS)


class DatabaseUnavailable(Exception):
    """The database cannot be reached; the message is one line naming host:port."""


class MigrationError(Exception):
    """The migrations cannot be applied; nothing was changed."""


def normalize_dsn(uri: str) -> str:
    """Validate a PostgreSQL URI and return it with the `postgresql://` scheme.

    Raises:
        ValueError: empty, not a URI, or another scheme, naming the problem.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ValueError("database URI is empty; expected postgresql://user@host:port/db")
    uri = uri.strip()
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError(
            f"database URI {_redact(uri)!r} is not a URI; expected postgresql://user@host:port/db"
        )
    if scheme.lower() not in SCHEMES:
        raise ValueError(f"database URI scheme {scheme!r} is not postgres:// or postgresql://")
    try:
        urlsplit(uri).port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        raise ValueError(f"database URI {_redact(uri)!r}: {exc}") from None
    return f"postgresql://{rest}"


def host_port(dsn: str) -> str:
    """`host:port` of a DSN, for messages (never the password)."""
    parts = urlsplit(dsn)
    return f"{parts.hostname or 'localhost'}:{parts.port or DEFAULT_PORT}"


def _redact(uri: str) -> str:
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", uri)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or "no details"
    return f"{type(exc).__name__}: {text}"


async def wait_for_database(
    dsn: str, timeout_s: float = WAIT_TIMEOUT_S, log: logging.Logger | None = None
) -> None:
    """Connect until it works or the deadline passes.

    Args:
        dsn: the database URI (either scheme).
        timeout_s: overall deadline.
        log: reports the wait every LOG_EVERY_S.

    Raises:
        DatabaseUnavailable: unreachable at the deadline, or a failure waiting will not
            fix (authentication, unknown database) at once.
    """
    dsn = normalize_dsn(dsn)
    deadline = time.monotonic() + timeout_s
    delay_s, next_log = RETRY_FIRST_S, time.monotonic() + LOG_EVERY_S
    while True:
        remaining = deadline - time.monotonic()
        try:
            conn = await asyncpg.connect(dsn, timeout=max(0.05, min(CONNECT_TIMEOUT_S, remaining)))
        except _FATAL as exc:
            raise DatabaseUnavailable(
                f"database at {host_port(dsn)} refused us: {_one_line(exc)}"
            ) from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            last = exc
        else:
            await conn.close(timeout=CONNECT_TIMEOUT_S)
            return
        now = time.monotonic()
        if now + delay_s >= deadline:
            raise DatabaseUnavailable(
                f"database at {host_port(dsn)} unreachable after {timeout_s:g} s: {_one_line(last)}"
            ) from last
        if log is not None and now >= next_log:
            log.info("waiting for the database at %s: %s", host_port(dsn), _one_line(last))
            next_log = now + LOG_EVERY_S
        await asyncio.sleep(delay_s)
        delay_s = min(delay_s * 2, RETRY_MAX_S)


# -- migrations ---------------------------------------------------------------------------

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    service    text        NOT NULL,
    version    int         NOT NULL,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service, version)
)"""


def migration_files(schema_dir: Path) -> list[tuple[int, str, Path]]:
    """The `NNN_name.sql` files of a directory as (version, name, path), by version.

    Raises:
        MigrationError: a `.sql` file not named NNN_name.sql, or two files of one number.
    """
    found: dict[int, Path] = {}
    for path in sorted(Path(schema_dir).glob("*.sql")):
        match = MIGRATION_FILE.fullmatch(path.name)
        if not match:
            raise MigrationError(f"{path} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations numbered {version}: {found[version].name} and {path.name}"
            )
        found[version] = path
    return [(version, path.stem, path) for version, path in sorted(found.items())]


async def migrate(dsn: str, service: str, schema_dir: Path) -> list[str]:
    """Apply the service's pending migrations in order, all in one transaction.

    Safe with several instances starting at once: the transaction holds
    `pg_advisory_xact_lock(hashtext('migrate:' || service))`, so the second instance
    waits, then finds nothing left to apply. A failing file rolls everything back.
    Statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY) are not
    supported.

    Returns:
        The names (`NNN_name`) applied now; empty when the schema was current.

    Raises:
        MigrationError: files misnamed or duplicated, an applied version's file missing
            or renamed, a new file older than an applied one, or a file failed.
    """
    files = migration_files(schema_dir)
    if not files:
        raise MigrationError(f"no NNN_name.sql files in {schema_dir}")
    conn = await asyncpg.connect(
        normalize_dsn(dsn), timeout=CONNECT_TIMEOUT_S, command_timeout=MIGRATE_TIMEOUT_S
    )
    try:
        # NOTE: the shared table is created under its own lock, in its own transaction:
        # two services migrating one database at once would otherwise both CREATE it.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('migrate'))")
            await conn.execute(_CREATE_TABLE)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"migrate:{service}")
            applied = dict(
                await conn.fetch(
                    "SELECT version, name FROM schema_migrations WHERE service = $1", service
                )
            )
            pending = _pending(service, files, applied)
            for version, name, path in pending:
                await _apply(conn, service, version, name, path)
    finally:
        await conn.close(timeout=CONNECT_TIMEOUT_S)
    return [name for _, name, _ in pending]


def _pending(
    service: str, files: list[tuple[int, str, Path]], applied: dict[int, str]
) -> list[tuple[int, str, Path]]:
    on_disk = {version: name for version, name, _ in files}
    for version, name in sorted(applied.items()):
        if on_disk.get(version) != name:
            now = f"{on_disk[version]}.sql" if version in on_disk else "no file"
            raise MigrationError(
                f"{service}: applied migration {name}.sql is missing "
                f"(version {version} is now {now}); migrations are "
                "forward-only, add a new file instead"
            )
    newest = max(applied, default=-1)
    pending = [entry for entry in files if entry[0] not in applied]
    for version, name, _ in pending:
        if version < newest:
            raise MigrationError(
                f"{service}: {name}.sql is older than the applied "
                f"version {newest}; number new migrations above it"
            )
    return pending


async def _apply(
    conn: asyncpg.Connection, service: str, version: int, name: str, path: Path
) -> None:
    sql = path.read_text()
    try:
        await conn.execute(sql)  # simple query protocol: several statements per file
    except (asyncpg.PostgresError, TimeoutError) as exc:
        raise MigrationError(
            f"{service}: {path.name} failed, nothing applied: {_one_line(exc)}"
        ) from exc
    await conn.execute(
        "INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)",
        service,
        version,
        name,
    )
