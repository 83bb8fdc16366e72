"""actors.runtime.pg (connect, migrate, pool, server) against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import pytest

from actors.runtime.pg import (
    DatabaseUnavailable,
    MigrationError,
    migrate,
    normalize_dsn,
    wait_for_database,
)
from actors.runtime.pg.pool import LazyPool
from actors.runtime.pg.server import PostgresServer
from tests.fixtures_pg import free_pg_port

_numbers = itertools.count(1)


@pytest.fixture
def db(pg_server) -> str:
    """A fresh database per test: migrations leave tables behind."""
    return pg_server.create_database(f"t_runtime_pg_{next(_numbers)}")


def write(schema: Path, files: dict[str, str]) -> Path:
    schema.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (schema / name).write_text(sql)
    return schema


async def fetch(dsn: str, sql: str, *args):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


def test_migrate_applies_in_numeric_order_once(db, tmp_path):
    schema = write(
        tmp_path / "schema",
        {
            "2_table.sql": "CREATE TABLE t (x int);",
            "10_rows.sql": "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2);",
            "1_first.sql": "CREATE TABLE first (y int);",
        },
    )
    assert asyncio.run(migrate(db, "svc", schema)) == ["1_first", "2_table", "10_rows"]
    assert asyncio.run(migrate(db, "svc", schema)) == []
    rows = asyncio.run(
        fetch(
            db, "SELECT version, name FROM schema_migrations WHERE service = 'svc' ORDER BY version"
        )
    )
    assert [tuple(row) for row in rows] == [(1, "1_first"), (2, "2_table"), (10, "10_rows")]
    assert [row["x"] for row in asyncio.run(fetch(db, "SELECT x FROM t ORDER BY x"))] == [1, 2]

    write(schema, {"11_more.sql": "INSERT INTO t VALUES (3);"})
    assert asyncio.run(migrate(db, "svc", schema)) == ["11_more"]


def test_two_instances_migrating_at_once_apply_once(db, tmp_path):
    # Not idempotent on purpose: a second application would fail on CREATE TABLE.
    schema = write(
        tmp_path / "schema",
        {
            "001_slow.sql": "SELECT pg_sleep(0.5); CREATE TABLE once (x int);",
            "002_rows.sql": "INSERT INTO once VALUES (1);",
        },
    )

    async def both():
        return await asyncio.gather(migrate(db, "svc", schema), migrate(db, "svc", schema))

    results = asyncio.run(both())
    assert sorted(results) == [[], ["001_slow", "002_rows"]]
    assert len(asyncio.run(fetch(db, "SELECT * FROM once"))) == 1


def test_services_are_independent(db, tmp_path):
    one = write(tmp_path / "one", {"001_a.sql": "CREATE TABLE a (x int);"})
    two = write(tmp_path / "two", {"001_b.sql": "CREATE TABLE b (x int);"})

    async def both():
        return await asyncio.gather(migrate(db, "one", one), migrate(db, "two", two))

    assert asyncio.run(both()) == [["001_a"], ["001_b"]]


def test_a_failing_file_rolls_everything_back(db, tmp_path):
    schema = write(
        tmp_path / "schema",
        {
            "001_ok.sql": "CREATE TABLE good (x int);",
            "002_bad.sql": "CREATE TABLE bad (x int); SELEKT 1;",
        },
    )
    with pytest.raises(MigrationError, match=r"002_bad\.sql failed"):
        asyncio.run(migrate(db, "svc", schema))
    tables = asyncio.run(
        fetch(db, "SELECT tablename FROM pg_tables WHERE tablename IN ('good', 'bad')")
    )
    assert tables == []
    applied = asyncio.run(fetch(db, "SELECT * FROM schema_migrations WHERE service = 'svc'"))
    assert applied == []

    write(schema, {"002_bad.sql": "CREATE TABLE bad (x int);"})
    assert asyncio.run(migrate(db, "svc", schema)) == ["001_ok", "002_bad"]


def test_migrate_refuses_a_broken_history(db, tmp_path):
    schema = write(tmp_path / "schema", {"001_a.sql": "SELECT 1;", "002_b.sql": "SELECT 2;"})
    asyncio.run(migrate(db, "svc", schema))

    (schema / "002_b.sql").unlink()
    with pytest.raises(MigrationError, match=r"002_b\.sql is missing"):
        asyncio.run(migrate(db, "svc", schema))

    write(schema, {"002_b.sql": "SELECT 2;", "002_c.sql": "SELECT 3;"})
    with pytest.raises(MigrationError, match="two migrations numbered 2"):
        asyncio.run(migrate(db, "svc", schema))

    (schema / "002_c.sql").unlink()
    write(schema, {"notes.sql": "SELECT 4;"})
    with pytest.raises(MigrationError, match=r"not named NNN_name\.sql"):
        asyncio.run(migrate(db, "svc", schema))


def test_wait_for_database_answers_when_up(pg_dsn):
    asyncio.run(wait_for_database(pg_dsn, timeout_s=5.0))


def test_wait_for_database_gives_up_at_the_deadline():
    port = free_pg_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as info:
        asyncio.run(wait_for_database(f"postgres://postgres@127.0.0.1:{port}/x", timeout_s=1.0))
    assert time.monotonic() - started < 3.0
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "\n" not in message


def test_wait_for_database_fails_at_once_for_an_unknown_database(pg_server):
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        asyncio.run(wait_for_database(pg_server.dsn("no_such_db"), timeout_s=10.0))
    assert time.monotonic() - started < 5.0


def test_normalize_dsn():
    assert normalize_dsn(" postgres://u@h:1/d ") == "postgresql://u@h:1/d"
    assert normalize_dsn("postgresql://u@h/d") == "postgresql://u@h/d"
    for bad, problem in [
        ("", "empty"),
        ("mysql://u@h/d", "scheme 'mysql'"),
        ("u@h/d", "not a URI"),
        ("postgres://u@h:port/d", "port"),
    ]:
        with pytest.raises(ValueError, match=problem):
            normalize_dsn(bad)


def test_lazy_pool_opens_on_first_acquire(pg_dsn):
    pool = LazyPool(
        pg_dsn.replace("postgresql://", "postgres://"),
        max_size=2,
        command_timeout_s=0.3,
        application_name="lazy-pool-test",
    )

    async def scenario():
        watch = await asyncpg.connect(pg_dsn)
        count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
        try:
            assert not pool.opened
            assert await watch.fetchval(count, "lazy-pool-test") == 0
            async with pool.acquire() as conn:
                assert await conn.fetchval("SELECT $1::int + 1", 41) == 42
            assert pool.opened
            assert await watch.fetchval(count, "lazy-pool-test") == 1
            async with pool.acquire() as conn:
                with pytest.raises(TimeoutError):
                    await conn.fetchval("SELECT pg_sleep(5)")  # over command_timeout_s
            await pool.close()
            assert not pool.opened
        finally:
            await watch.close()

    asyncio.run(scenario())


def test_lazy_pool_rolls_back_what_a_caller_left_open(db):
    pool = LazyPool(db, max_size=1)

    async def scenario():
        async with pool.acquire() as conn:
            await conn.execute("CREATE TABLE left_open (x int)")
            await conn.execute("BEGIN; INSERT INTO left_open VALUES (1)")  # never committed
        async with pool.acquire() as conn:  # the same connection (max_size=1)
            assert await conn.fetchval("SELECT count(*) FROM left_open") == 0
            assert not conn.is_in_transaction()
        await pool.close()

    asyncio.run(scenario())


def test_lazy_pool_bounds_the_wait_for_a_free_connection(pg_dsn):
    pool = LazyPool(pg_dsn, min_size=1, max_size=1)

    async def scenario():
        async with pool.acquire():
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable, match="no free pooled connection"):
                async with pool.acquire(timeout_s=0.2):
                    pass
            assert time.monotonic() - started < 2.0
        async with pool.acquire() as conn:  # the pool still works
            assert await conn.fetchval("SELECT 1") == 1
        await pool.close()

    asyncio.run(scenario())


def test_lazy_pool_reports_an_unreachable_database():
    pool = LazyPool(f"postgresql://postgres@127.0.0.1:{free_pg_port()}/x")

    async def scenario():
        with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1"):
            async with pool.acquire():
                pass
        await pool.close()

    asyncio.run(scenario())


def test_lazy_pool_serves_the_first_query_after_a_database_restart():
    """Idle connections that died with the server are dropped, not handed out."""
    root = Path(tempfile.mkdtemp(prefix="pgtest-restart-"))
    server = PostgresServer(root / "data", free_pg_port())
    try:
        server.init()
        server.start()
        pool = LazyPool(server.dsn(), max_size=4)

        async def query() -> int:
            async with pool.acquire() as conn:
                return int(await conn.fetchval("SELECT 1"))

        async def restart_then_query() -> list[int]:
            async with pool.acquire(), pool.acquire(), pool.acquire():
                pass  # three connections at once, then idle, as a busy worker has them
            assert len(pool._idle) == 3
            server.stop()
            server.start()
            deadline = time.monotonic() + 10.0
            while not all(_seen_closed(conn) for conn in pool._idle):  # the client saw it
                assert time.monotonic() < deadline, "the client never saw the restart"
                await asyncio.sleep(0.01)
            answers = [await query() for _ in range(4)]
            await pool.close()
            return answers

        assert asyncio.run(restart_then_query()) == [1, 1, 1, 1]
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _seen_closed(conn: object) -> bool:
    try:
        return bool(conn.is_closed())  # type: ignore[attr-defined]
    except asyncpg.InterfaceError:  # released back to the pool when it closed
        return True


def wait_dead(pid: int, timeout_s: float) -> bool:
    """True once pid has exited (gone, or a zombie nobody reaped)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False


def test_kill9_and_restart_keeps_committed_data():
    root = Path(tempfile.mkdtemp(prefix="pgtest-kill9-"))
    server = PostgresServer(root / "data", free_pg_port())
    try:
        server.init()
        server.start()
        dsn = server.create_database("crash")

        async def commit_rows_then_crash():
            conn = await asyncpg.connect(dsn)
            await conn.execute("CREATE TABLE t (x int)")
            await conn.executemany("INSERT INTO t VALUES ($1)", [(i,) for i in range(100)])
            # An open transaction at the crash must vanish.
            await conn.execute("BEGIN; INSERT INTO t VALUES (-1)")
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            server.kill9()
            conn.terminate()
            return backend

        backend = asyncio.run(commit_rows_then_crash())
        assert wait_dead(backend, timeout_s=5.0), "kill9 left a backend running"
        assert not server.running()
        server.start()
        rows = asyncio.run(fetch(dsn, "SELECT count(*), min(x), max(x) FROM t"))
        assert tuple(rows[0]) == (100, 0, 99)
        assert server.stop() == 0
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
