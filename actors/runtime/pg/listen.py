"""Wake-ups through the database: a dedicated connection LISTENing on a set of channels.

Work committed on any instance, on any host, reaches the process that owns it as a
PostgreSQL notification: the writer adds ``pg_notify(channel, payload)`` to the
statement or transaction that queues the work, so the notification is delivered only if
and when that transaction commits. A process keeps one ``Listener``:

    listener = Listener(dsn, on_notify, on_connect=wake, name="balances worker-0")
    task = asyncio.create_task(listener.run())     # connects, LISTENs, reconnects
    await listener.listen_to({"balances_shard_3", "balances_shard_7"})
    ...
    task.cancel(); await listener.close()

Notifications are a hint, never the record: one sent while the connection is down (a
PostgreSQL restart, a dropped link) is lost, so ``on_connect`` runs after every
(re)connect for the owner to look at once, and owners keep their periodic poll.

NOTE: a lost link does not close a TCP connection by itself (no FIN arrives); besides
asyncpg's termination callback (server restart, backend killed), the connection is
checked with a query every ``check_s`` and replaced when that does not answer in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

import asyncpg

from actors.runtime.pg.connect import (
    CONNECT_TIMEOUT_S,
    TRANSIENT_ERRORS,
    host_port,
    normalize_dsn,
    one_line,
)

__all__ = ["CHECK_S", "Listener"]

CHECK_S = 2.0
"""How often an idle listening connection is checked with a query: a dropped link is
noticed within CHECK_S + CHECK_TIMEOUT_S."""
CHECK_TIMEOUT_S = 2.0
"""The check query's deadline; a connection that misses it is replaced."""
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0
"""Reconnect backoff: doubles from the first to the most, reset once connected."""


class Listener:
    """One asyncpg connection per process, LISTENing on the channels its owner wants.

    Args:
        dsn: the database URI.
        on_notify: called with (channel, payload) for every notification.
        on_connect: called after every (re)connect, once all channels are listened to:
            whatever was notified while disconnected is lost, so look now.
        name: application_name of the connection and the logger's suffix.
        check_s: how often the idle connection is checked (see the module's NOTE).
    """

    def __init__(
        self,
        dsn: str,
        on_notify: Callable[[str, str], None],
        *,
        on_connect: Callable[[], None] | None = None,
        name: str = "listener",
        check_s: float = CHECK_S,
    ):
        self.dsn = normalize_dsn(dsn)
        self.on_notify = on_notify
        self.on_connect = on_connect
        self.name = name
        self.check_s = check_s
        self.log = logging.getLogger(f"pg.listen[{name}]")
        self.channels: set[str] = set()
        self.connects = 0
        """Successful (re)connects so far (tests and logs read it)."""
        self._conn: asyncpg.Connection | None = None
        self._listening: set[str] = set()
        self._lock: asyncio.Lock | None = None
        self._lost: asyncio.Event | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def listen_to(self, channels: Iterable[str]) -> None:
        """Make the listened channels exactly these (now if connected, else on connect).
        Never raises: a failure here drops the connection, and the reconnect re-listens."""
        self.channels = set(channels)
        conn = self._conn
        if conn is None:
            return
        try:
            async with self._guard():
                await self._sync(conn)
        except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
            self.log.warning("could not change channels: %s", one_line(exc))
            self._drop(conn)

    async def run(self) -> None:
        """Connect, listen, check; reconnect with backoff when lost. Runs until cancelled."""
        delay_s, failing = RETRY_FIRST_S, False
        while True:
            try:
                conn = await asyncpg.connect(
                    self.dsn,
                    timeout=CONNECT_TIMEOUT_S,
                    server_settings={"application_name": self.name},
                )
            except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
                if not failing:
                    self.log.warning("cannot listen at %s: %s", host_port(self.dsn), one_line(exc))
                failing = True
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, RETRY_MAX_S)
                continue
            try:
                await self._serve(conn)
                self.log.warning("listening connection closed; reconnecting")
            except (*TRANSIENT_ERRORS, asyncpg.PostgresError) as exc:
                self.log.warning("listening connection lost: %s", one_line(exc))
            finally:
                self._drop(conn)
            delay_s, failing = RETRY_FIRST_S, True
            await asyncio.sleep(delay_s)

    async def close(self) -> None:
        """Close the connection (cancel ``run()`` first)."""
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(*TRANSIENT_ERRORS, asyncpg.PostgresError):
                await asyncio.wait_for(conn.close(), CHECK_TIMEOUT_S)
            if not conn.is_closed():
                conn.terminate()

    # --- the connection ---------------------------------------------------------------

    async def _serve(self, conn: asyncpg.Connection) -> None:
        self._lost = lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        self._listening = set()
        self._conn = conn  # from now on listen_to() syncs too (under the lock)
        async with self._guard():
            await self._sync(conn)
        self.connects += 1
        self.log.info(
            "listening on %d channels at %s%s",
            len(self._listening),
            host_port(self.dsn),
            " (reconnected)" if self.connects > 1 else "",
        )
        if self.on_connect is not None:
            self.on_connect()
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.check_s)
                return
            async with self._guard():
                await conn.fetchval("SELECT 1", timeout=CHECK_TIMEOUT_S)

    async def _sync(self, conn: asyncpg.Connection) -> None:
        """LISTEN/UNLISTEN until the connection listens to self.channels (under the lock)."""
        for channel in sorted(self._listening - self.channels):
            await conn.remove_listener(channel, self._deliver)
            self._listening.discard(channel)
        for channel in sorted(self.channels - self._listening):
            await conn.add_listener(channel, self._deliver)
            self._listening.add(channel)

    def _deliver(self, _conn: Any, _pid: int, channel: str, payload: object) -> None:
        try:
            self.on_notify(channel, str(payload))
        except Exception:
            self.log.exception("notification handler failed (%s)", channel)

    def _drop(self, conn: asyncpg.Connection) -> None:
        if self._conn is conn:
            self._conn = None
        if self._lost is not None:
            self._lost.set()
        if not conn.is_closed():
            conn.terminate()

    def _guard(self) -> asyncio.Lock:
        """asyncpg runs one operation at a time per connection: checks and (UN)LISTENs
        take turns."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock
