"""PostgreSQL fixtures: one private server per test session, a fresh database per module.

A pytest plugin module, loaded by the root conftest (``pytest_plugins``); ``loop``
is the event loop a module's store tests share with its pool. The server runs on a
free 127.0.0.1 port from a directory under the system temp dir (world-traversable, so
the server's unprivileged user can reach it when the tests run as root), and is removed
at the end.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from actors.runtime.pg.server import PostgresError, PostgresServer
from actors.runtime.testing import free_port

if TYPE_CHECKING:  # for the annotations; migrated_pool imports the runtime at call time
    from asyncpg import Record

    from actors.runtime.pg.pool import LazyPool

__all__ = ["fetch_rows", "free_pg_port", "loop", "migrated_pool", "pg_dsn", "pg_server"]

START_ATTEMPTS = 3  # a free port can be taken between the probe and the bind
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 120.0
"""The session server's fast shutdown ends with a checkpoint of up to shared_buffers of
dirty pages: on a loaded disk that took over 10 s (twice, killed at 10 s, failing the
last test's teardown). A bound on a hang, not the expected time."""


def free_pg_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.Runner]:
    """One event loop per module (``loop.run(coro)``), so a pool outlives a test."""
    with asyncio.Runner() as runner:
        yield runner


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A started PostgresServer; stopped (fast shutdown, exit 0 asserted) at the end."""
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))
    server: PostgresServer | None = None
    errors: list[str] = []
    for _ in range(START_ATTEMPTS):
        candidate = PostgresServer(root / "data", free_pg_port())
        try:
            candidate.init()
            candidate.start(timeout_s=START_TIMEOUT_S)
        except PostgresError as exc:
            errors.append(str(exc))
            candidate.stop()
            continue
        server = candidate
        break
    if server is None:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail("PostgreSQL did not start:\n" + "\n---\n".join(errors), pytrace=False)
    try:
        yield server
    finally:
        code = server.stop(timeout_s=STOP_TIMEOUT_S)
        log = server.log_tail()
        shutil.rmtree(root, ignore_errors=True)
        if code != 0:
            pytest.fail(f"PostgreSQL stopped with exit code {code}:\n{log}", pytrace=False)


_created: dict[str, int] = {}


@pytest.fixture(scope="module")
def pg_dsn(pg_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The DSN of a new, empty database for the requesting test module."""
    base = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.lower())[-50:]
    _created[base] = _created.get(base, 0) + 1
    return pg_server.create_database(f"t_{base}_{_created[base]}")


def migrated_pool(
    dsn: str, loop: asyncio.Runner, service: str, schema_dir: Path, max_size: int
) -> Iterator[LazyPool]:
    """Generator body of a service's ``db`` fixture: its schema applied, a LazyPool on
    the module's database (closed at the end)::

        @pytest.fixture(scope="module")
        def db(pg_dsn, loop):
            yield from migrated_pool(pg_dsn, loop, "balances", SCHEMA_DIR, max_size=8)
    """
    from actors.runtime.pg import migrate
    from actors.runtime.pg.pool import LazyPool

    loop.run(migrate(dsn, service, schema_dir))
    pool = LazyPool(dsn, max_size=max_size)
    yield pool
    loop.run(pool.close())


def fetch_rows(loop: asyncio.Runner, pool: LazyPool, query: str, *args: object) -> list[Record]:
    """The rows of one query on a pooled connection: test-only SQL, to check what the
    store wrote without the store's own reads."""

    async def fetch() -> list[Record]:
        async with pool.acquire() as conn:
            return await conn.fetch(query, *args)

    return loop.run(fetch())
