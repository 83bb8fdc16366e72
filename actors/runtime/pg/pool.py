"""The lazy connection pool of a PostgreSQL service's worker or actor (asyncpg).

Opened on first use inside the event loop that uses it (never at import, never in
gunicorn's master, which forks), with a short path for the common case of one
clean query per request; see LazyPool's notes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from typing import TYPE_CHECKING, cast

import asyncpg

from actors.runtime.pg.connect import (
    CONNECT_TIMEOUT_S,
    DatabaseUnavailable,
    host_port,
    normalize_dsn,
    one_line,
)

__all__ = ["LazyPool"]

COMMAND_TIMEOUT_S = 5.0  # default per query of a pooled connection
ACQUIRE_TIMEOUT_S = 5.0  # waiting for a free pooled connection
CLOSE_TIMEOUT_S = 10.0  # graceful pool close, then terminate

if TYPE_CHECKING:  # the stubs' generic; asyncpg's class is not subscriptable
    from asyncpg.pool import PoolConnectionProxy

    _Pooled = PoolConnectionProxy[asyncpg.Record]
    """What asyncpg's pool hands out: a proxy forwarding every Connection method."""


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
_running_loop = asyncio.get_running_loop


class LazyPool:
    """An asyncpg pool opened on first use, in the event loop that uses it.

    Args:
        dsn: the database URI (either scheme).
        min_size, max_size: pooled connections per process.
        command_timeout_s: default timeout of every query (asyncpg cancels it server-side).
        acquire_timeout_s: waiting for a free connection.
        application_name: shown in pg_stat_activity.
        server_settings: session settings of every connection (e.g. timeouts).
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

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout_s: float = COMMAND_TIMEOUT_S,
        acquire_timeout_s: float = ACQUIRE_TIMEOUT_S,
        application_name: str | None = None,
        reset_session: bool = False,
        server_settings: dict[str, str] | None = None,
    ):
        self.dsn = normalize_dsn(dsn)
        self.min_size = min_size
        self.max_size = max_size
        self.command_timeout_s = command_timeout_s
        self.acquire_timeout_s = acquire_timeout_s
        self.application_name = application_name
        self.reset_session = reset_session
        self.server_settings = dict(server_settings or {})
        if application_name:
            self.server_settings["application_name"] = application_name
        self._pool: asyncpg.Pool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid: int | None = None
        self._opening: asyncio.Lock | None = None
        self._idle: collections.deque[_Pooled] = collections.deque()
        self._waiting = 0  # tasks waiting for asyncpg's pool: releases go there then

    @property
    def opened(self) -> bool:
        return self._pool is not None and self._pid == os.getpid()

    async def _open(self) -> asyncpg.Pool:
        loop = asyncio.get_running_loop()
        opened = self._pool if self.opened else None
        if opened is not None:
            if self._loop is not loop:
                raise RuntimeError(
                    "LazyPool used from another event loop than the one "
                    "that opened it; make one pool per loop"
                )
            return opened
        if self._pid != os.getpid():
            # NOTE: after a fork the parent's pool (if any) is not ours to close.
            self._pool, self._opening, self._pid = None, None, os.getpid()
            self._idle.clear()
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                settings = self.server_settings or None
                try:
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=self.min_size,
                        max_size=self.max_size,
                        command_timeout=self.command_timeout_s,
                        timeout=CONNECT_TIMEOUT_S,
                        server_settings=settings,
                        reset=None if self.reset_session else _keep_session,
                    )
                except (
                    OSError,
                    TimeoutError,
                    asyncpg.PostgresError,
                    asyncpg.InterfaceError,
                ) as exc:
                    raise DatabaseUnavailable(
                        f"database at {host_port(self.dsn)}: {one_line(exc)}"
                    ) from exc
                self._loop = loop
        return self._pool

    def acquire(
        self, timeout_s: float | None = None
    ) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """`async with pool.acquire() as conn:` a pooled connection.

        Raises:
            DatabaseUnavailable: the pool cannot connect, or no connection is free
                within the acquire timeout.
        """
        return _Acquired(self, timeout_s)

    async def _take(self, timeout_s: float | None) -> _Pooled:
        pool = self._pool
        if pool is None or self._pid != os.getpid() or self._loop is not _running_loop():
            pool = await self._open()  # the first use, a fork, or the wrong loop (raises)
        conn = await self._pop_idle(pool) if self._idle else None
        return conn if conn is not None else await self._acquire(pool, timeout_s)

    async def _give_back(self, conn: _Pooled, clean: bool) -> None:
        if clean and not self._waiting and not conn.is_closed() and not conn.is_in_transaction():
            self._idle.append(conn)
        else:
            assert self._pool is not None  # it handed out conn
            await self._pool.release(conn)

    async def _pop_idle(self, pool: asyncpg.Pool) -> _Pooled | None:
        """The newest idle connection that is still open, or None.

        NOTE: a connection can close while it idles here (the database restarted, or
        dropped it): asyncpg then takes its holder back and detaches the proxy, whose
        every method raises InterfaceError. Handing one out would fail a request that a
        fresh connection would serve, one 503 per idle connection per worker after
        every database restart.
        """
        while self._idle:
            conn = self._idle.pop()
            try:
                if not conn.is_closed():
                    return conn
            except asyncpg.InterfaceError:  # detached: asyncpg already took it back
                continue
            await pool.release(conn)  # closed without asyncpg's cleanup: this finishes it
        return None

    async def _acquire(self, pool: asyncpg.Pool, timeout_s: float | None) -> _Pooled:
        timeout = self.acquire_timeout_s if timeout_s is None else timeout_s
        self._waiting += 1
        try:
            # NOTE: asyncio.timeout, not acquire(timeout=): that one wraps every
            # acquire in wait_for, a task per request.
            async with asyncio.timeout(timeout):
                return await pool.acquire()
        except TimeoutError as exc:
            raise DatabaseUnavailable(
                f"database at {host_port(self.dsn)}: no free pooled connection within {timeout:g} s"
            ) from exc
        except (OSError, asyncpg.PostgresError) as exc:  # a new connection failed
            raise DatabaseUnavailable(
                f"database at {host_port(self.dsn)}: {one_line(exc)}"
            ) from exc
        finally:
            self._waiting -= 1

    async def close(self) -> None:
        """Close the pool if this process opened it; terminate after CLOSE_TIMEOUT_S."""
        pool, self._pool = (self._pool, None) if self.opened else (None, None)
        if pool is None:
            return
        while self._idle:
            # NOTE: one may have closed meanwhile (the database stops with us under
            # honcho): asyncpg then refuses its release; pool.close() ends it anyway.
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.InternalClientError):
                await pool.release(self._idle.pop())
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            pool.terminate()


class _Acquired:
    """What ``LazyPool.acquire()`` returns: a class, not an @asynccontextmanager, whose
    generator, wrapper and two extra awaits per request were 2-3 % of a one-query
    request's CPU (bench --profile)."""

    __slots__ = ("_conn", "_lazy", "_timeout_s")

    def __init__(self, lazy: LazyPool, timeout_s: float | None):
        self._lazy = lazy
        self._timeout_s = timeout_s
        self._conn: _Pooled | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        self._conn = await self._lazy._take(self._timeout_s)
        # NOTE: callers type it as the Connection whose methods the proxy forwards.
        return cast(asyncpg.Connection, self._conn)

    async def __aexit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self._lazy._give_back(conn, clean=exc_type is None)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook: nothing beyond the rollback asyncpg does before calling it."""
