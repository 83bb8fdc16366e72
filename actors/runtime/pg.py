"""PostgreSQL for services: wait for the database, apply a service's migrations, the pool.

Built on asyncpg (binary protocol, prepared statements cached per connection; see
bench/pg_driver.py for the measurement against psycopg 3). Every service does, at start:

    dsn = normalize_dsn(config.database_uri)
    await wait_for_database(dsn, timeout_s=30.0)     # DatabaseUnavailable after that
    await migrate(dsn, "segments", SCHEMA_DIR)       # schema/NNN_name.sql, once each
    pool = LazyPool(dsn)                             # opens on first acquire()
    async with pool.acquire() as conn:
        ...
    await pool.close()

NOTE: nothing here connects at import time or in a gunicorn master: the pool opens in
the event loop of the worker that first uses it. The runtime reads no environment
variable; services pass the DSN.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

__all__ = [
    "DatabaseUnavailable",
    "LazyPool",
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


class _OneLine(logging.Filter):
    """Turns asyncpg's pool tracebacks into one line each.

    NOTE: asyncpg's pool logs a full traceback whenever it cannot restore its
    minimum connections, e.g. in every worker of every service while PostgreSQL
    shuts down before them (honcho stops all at once). The cause is what an
    operator needs; the stack of asyncpg's internals is not.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


logging.getLogger("asyncpg.pool").addFilter(_OneLine())


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
        raise ValueError(f"database URI {_redact(uri)!r} is not a URI; "
                         "expected postgresql://user@host:port/db")
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


async def wait_for_database(dsn: str, timeout_s: float = WAIT_TIMEOUT_S,
                            log: logging.Logger | None = None) -> None:
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
            conn = await asyncpg.connect(dsn, timeout=max(0.05, min(CONNECT_TIMEOUT_S,
                                                                     remaining)))
        except _FATAL as exc:
            raise DatabaseUnavailable(f"database at {host_port(dsn)} refused us: "
                                      f"{_one_line(exc)}") from exc
        except (OSError, TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:
            last = exc
        else:
            await conn.close(timeout=CONNECT_TIMEOUT_S)
            return
        now = time.monotonic()
        if now + delay_s >= deadline:
            raise DatabaseUnavailable(f"database at {host_port(dsn)} unreachable after "
                                      f"{timeout_s:g} s: {_one_line(last)}") from last
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
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(f"two migrations numbered {version}: "
                                 f"{found[version].name} and {path.name}")
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
    conn = await asyncpg.connect(normalize_dsn(dsn), timeout=CONNECT_TIMEOUT_S,
                                 command_timeout=MIGRATE_TIMEOUT_S)
    try:
        # NOTE: the shared table is created under its own lock, in its own transaction:
        # two services migrating one database at once would otherwise both CREATE it.
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('migrate'))")
            await conn.execute(_CREATE_TABLE)
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))",
                               f"migrate:{service}")
            applied = dict(await conn.fetch(
                "SELECT version, name FROM schema_migrations WHERE service = $1", service))
            pending = _pending(service, files, applied)
            for version, name, path in pending:
                await _apply(conn, service, version, name, path)
    finally:
        await conn.close(timeout=CONNECT_TIMEOUT_S)
    return [name for _, name, _ in pending]


def _pending(service: str, files: list[tuple[int, str, Path]],
             applied: dict[int, str]) -> list[tuple[int, str, Path]]:
    on_disk = {version: name for version, name, _ in files}
    for version, name in sorted(applied.items()):
        if on_disk.get(version) != name:
            now = f"{on_disk[version]}.sql" if version in on_disk else "no file"
            raise MigrationError(f"{service}: applied migration {name}.sql is missing "
                                 f"(version {version} is now {now}); migrations are "
                                 "forward-only, add a new file instead")
    newest = max(applied, default=-1)
    pending = [entry for entry in files if entry[0] not in applied]
    for version, name, _ in pending:
        if version < newest:
            raise MigrationError(f"{service}: {name}.sql is older than the applied "
                                 f"version {newest}; number new migrations above it")
    return pending


async def _apply(conn: asyncpg.Connection, service: str, version: int, name: str,
                 path: Path) -> None:
    sql = path.read_text()
    try:
        await conn.execute(sql)  # simple query protocol: several statements per file
    except (asyncpg.PostgresError, TimeoutError) as exc:
        raise MigrationError(f"{service}: {path.name} failed, nothing applied: "
                             f"{_one_line(exc)}") from exc
    await conn.execute(
        "INSERT INTO schema_migrations (service, version, name) VALUES ($1, $2, $3)",
        service, version, name)


# -- the pool -----------------------------------------------------------------------------

class LazyPool:
    """An asyncpg pool opened on first use, in the event loop that uses it.

    Args:
        dsn: the database URI (either scheme).
        min_size, max_size: pooled connections per process.
        command_timeout_s: default timeout of every query (asyncpg cancels it server-side).
        acquire_timeout_s: waiting for a free connection.
        application_name: shown in pg_stat_activity.
        reset_session: run asyncpg's full session reset (RESET ALL, UNLISTEN *, CLOSE
            ALL, pg_advisory_unlock_all) on every release.

    NOTE: a connection released cleanly (no error, no open transaction) while no task
    waits for one goes onto this pool's own stack of idle connections, and the next
    acquire takes it from there: asyncpg's pool costs 100-120 us of CPU per
    acquire/release pair (a timeout, a queue, a task per release), the stack 40-50, and a
    one-query request is CPU-bound (bench/README.md). Anything else goes back to asyncpg,
    which rolls back, discards a broken connection and wakes its waiters.

    NOTE: by default a released connection only has its open transaction (if any)
    rolled back, which asyncpg always does. The full reset is one more round trip (four
    statements) per release: a pooled `SELECT $1` took 0.26 ms instead of 0.15 ms
    (median, one client, 2-core dev box). So services keep no session state:
    `SET LOCAL`, not `SET`; `pg_advisory_xact_lock`, not `pg_advisory_lock`; no LISTEN
    on pooled connections.
    """

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 command_timeout_s: float = COMMAND_TIMEOUT_S,
                 acquire_timeout_s: float = ACQUIRE_TIMEOUT_S,
                 application_name: str | None = None, reset_session: bool = False):
        self.dsn = normalize_dsn(dsn)
        self.min_size = min_size
        self.max_size = max_size
        self.command_timeout_s = command_timeout_s
        self.acquire_timeout_s = acquire_timeout_s
        self.application_name = application_name
        self.reset_session = reset_session
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self._opening: asyncio.Lock | None = None
        self._idle: collections.deque[asyncpg.Connection] = collections.deque()
        self._waiting = 0  # tasks waiting for asyncpg's pool: releases go there then

    @property
    def opened(self) -> bool:
        return self._pool is not None and self._pid == os.getpid()

    async def _open(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        if self.opened:
            if self._loop is not loop:
                raise RuntimeError("LazyPool used from another event loop than the one "
                                   "that opened it; make one pool per loop")
            return self._pool
        if self._pid != os.getpid():
            # NOTE: after a fork the parent's pool (if any) is not ours to close.
            self._pool, self._opening, self._pid = None, None, os.getpid()
            self._idle.clear()
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                settings = {"application_name": self.application_name} \
                    if self.application_name else None
                try:
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=self.min_size, max_size=self.max_size,
                        command_timeout=self.command_timeout_s, timeout=CONNECT_TIMEOUT_S,
                        server_settings=settings,
                        reset=None if self.reset_session else _keep_session)
                except (OSError, TimeoutError, asyncpg.PostgresError,
                        asyncpg.InterfaceError) as exc:
                    raise DatabaseUnavailable(f"database at {host_port(self.dsn)}: "
                                              f"{_one_line(exc)}") from exc
                self._loop = loop
        return self._pool

    @contextlib.asynccontextmanager
    async def acquire(self, timeout_s: float | None = None
                      ) -> AsyncIterator[asyncpg.Connection]:
        """`async with pool.acquire() as conn:` a pooled connection.

        Raises:
            DatabaseUnavailable: the pool cannot connect, or no connection is free
                within the acquire timeout.
        """
        pool = await self._open()
        conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = await self._acquire(pool, timeout_s)
        clean = False
        try:
            yield conn
            clean = True
        finally:
            if (clean and not self._waiting and not conn.is_closed()
                    and not conn.is_in_transaction()):
                self._idle.append(conn)
            else:
                await pool.release(conn)

    async def _acquire(self, pool: asyncpg.Pool, timeout_s: float | None):
        timeout = self.acquire_timeout_s if timeout_s is None else timeout_s
        self._waiting += 1
        try:
            # NOTE: asyncio.timeout, not acquire(timeout=): that one wraps every
            # acquire in wait_for, a task per request.
            async with asyncio.timeout(timeout):
                return await pool.acquire()
        except TimeoutError as exc:
            raise DatabaseUnavailable(f"database at {host_port(self.dsn)}: no free pooled "
                                      f"connection within {timeout:g} s") from exc
        except (OSError, asyncpg.PostgresError) as exc:  # a new connection failed
            raise DatabaseUnavailable(f"database at {host_port(self.dsn)}: "
                                      f"{_one_line(exc)}") from exc
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        """Close the pool if this process opened it; terminate after CLOSE_TIMEOUT_S."""
        pool, self._pool = (self._pool, None) if self.opened else (None, None)
        if pool is None:
            return
        while self._idle:
            await pool.release(self._idle.pop())
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            pool.terminate()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing beyond the rollback asyncpg does before calling it."""
