"""actors.runtime.pg.listen and .notify against a real PostgreSQL: delivery on commit,
channel changes, re-listening after the server restarts, the coalescing notifier."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

from actors.runtime.pg.listen import Listener
from actors.runtime.pg.notify import Notifier
from actors.runtime.pg.pool import LazyPool
from actors.runtime.pg.server import PostgresServer
from tests.fixtures_pg import free_pg_port

DELIVERY_TIMEOUT_S = 5.0
QUIET_S = 0.3
"""How long a notification that must not arrive is waited for (it comes in ms)."""


class Inbox:
    """What a Listener delivered, in order, and how often it (re)connected."""

    def __init__(self) -> None:
        self.notes: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.connects: asyncio.Queue[None] = asyncio.Queue()

    def note(self, channel: str, payload: str) -> None:
        self.notes.put_nowait((channel, payload))

    def connected(self) -> None:
        self.connects.put_nowait(None)

    async def next(self) -> tuple[str, str]:
        return await asyncio.wait_for(self.notes.get(), DELIVERY_TIMEOUT_S)

    async def nothing(self) -> bool:
        try:
            await asyncio.wait_for(self.notes.get(), QUIET_S)
        except TimeoutError:
            return True
        return False


@asynccontextmanager
async def listening(
    dsn: str, channels: set[str], **options: float
) -> AsyncIterator[tuple[Listener, Inbox]]:
    inbox = Inbox()
    listener = Listener(dsn, inbox.note, on_connect=inbox.connected, name="test", **options)
    await listener.listen_to(channels)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(inbox.connects.get(), DELIVERY_TIMEOUT_S)
        yield listener, inbox
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await listener.close()


def test_a_notification_arrives_on_commit_and_not_on_rollback(pg_dsn):
    async def scenario() -> None:
        async with listening(pg_dsn, {"work"}) as (_, inbox):
            writer = await asyncpg.connect(pg_dsn)
            try:
                async with writer.transaction():
                    await writer.execute("SELECT pg_notify('work', 'one')")
                    assert await inbox.nothing()  # not before the commit
                assert await inbox.next() == ("work", "one")
                tx = writer.transaction()
                await tx.start()
                await writer.execute("SELECT pg_notify('work', 'two')")
                await tx.rollback()
                await writer.execute("SELECT pg_notify('other', 'x')")
                await writer.execute("SELECT pg_notify('work', 'three')")
                assert await inbox.next() == ("work", "three")
            finally:
                await writer.close()

    asyncio.run(scenario())


def test_listen_to_replaces_the_channels(pg_dsn):
    async def scenario() -> None:
        async with listening(pg_dsn, {"a"}) as (listener, inbox):
            writer = await asyncpg.connect(pg_dsn)
            try:
                await listener.listen_to({"b"})
                await writer.execute("SELECT pg_notify('a', '1'), pg_notify('b', '2')")
                assert await inbox.next() == ("b", "2")
                assert await inbox.nothing()
            finally:
                await writer.close()

    asyncio.run(scenario())


def test_the_listener_reconnects_and_listens_again_after_a_restart():
    root = Path(tempfile.mkdtemp(prefix="pgtest-listen-"))
    server = PostgresServer(root / "data", free_pg_port())
    try:
        server.init()
        server.start()
        dsn = server.dsn()

        async def scenario() -> int:
            async with listening(dsn, {"work"}) as (listener, inbox):
                server.stop()
                server.start()
                # on_connect again: the owner is told to look (it may have missed some)
                await asyncio.wait_for(inbox.connects.get(), 15)
                writer = await asyncpg.connect(dsn)
                try:
                    await writer.execute("SELECT pg_notify('work', 'after')")
                finally:
                    await writer.close()
                assert await inbox.next() == ("work", "after")
                return listener.connects

        assert asyncio.run(scenario()) == 2
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_backend_killed_under_the_listener_is_replaced(pg_dsn):
    async def scenario() -> None:
        async with listening(pg_dsn, {"work"}, check_s=0.2) as (listener, inbox):
            admin = await asyncpg.connect(pg_dsn)
            try:
                killed = await admin.fetchval(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'test' AND datname = current_database()"
                )
                assert killed
                await asyncio.wait_for(inbox.connects.get(), 10)
                await admin.execute("SELECT pg_notify('work', 'again')")
                assert await inbox.next() == ("work", "again")
                assert listener.connects == 2
            finally:
                await admin.close()

    asyncio.run(scenario())


def test_the_notifier_sends_a_burst_in_one_statement_and_never_raises(pg_dsn):
    async def scenario() -> None:
        async with listening(pg_dsn, {"a", "b", "c"}) as (_, inbox):
            pool = LazyPool(pg_dsn, max_size=2)
            notifier = Notifier(pool)
            try:
                for channel in ("a", "b", "a", "c", "a"):  # one loop turn: one round
                    notifier.notify(channel)
                got = {await inbox.next() for _ in range(3)}
                assert got == {("a", ""), ("b", ""), ("c", "")}
                assert await inbox.nothing()  # "a" once: the round sent a set
                assert notifier.sent == 3
            finally:
                await pool.close()
            broken = Notifier(LazyPool(pg_dsn.rsplit("/", 1)[0] + "/no_such_db"))
            broken.notify("a")
            assert broken._task is not None
            await asyncio.wait_for(broken._task, DELIVERY_TIMEOUT_S)  # logged, not raised
            assert broken.sent == 0

    asyncio.run(scenario())
