"""Fixtures of the segments tests: a migrated database per module, an event loop with a pool."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from actors.runtime.pg import migrate
from actors.segments.store import SCHEMA_DIR

POOL_SIZE = 8


@pytest.fixture(scope="module")
def segments_dsn(pg_dsn):  # pg_dsn: tests/fixtures_pg.py, a plugin of tests/conftest.py
    """A database of the module with the segments schema applied."""
    asyncio.run(migrate(pg_dsn, "segments", SCHEMA_DIR))
    return pg_dsn


class Db:
    """An event loop and an asyncpg pool on it; `db.run(coro)` runs one coroutine."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self.loop = asyncio.new_event_loop()
        self.pool = self.run(self._open())

    async def _open(self):
        return await asyncpg.create_pool(self.dsn, min_size=1, max_size=POOL_SIZE)

    def run(self, coro, timeout_s: float = 60.0):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout_s))

    def fetch(self, query: str, *args):
        return self.run(self.pool.fetch(query, *args))

    def close(self):
        self.run(self.pool.close())
        self.loop.close()


@pytest.fixture(scope="module")
def db(segments_dsn):
    database = Db(segments_dsn)
    yield database
    database.close()


class AppClient:
    """The segments app in process (falcon ASGIConductor) over the module's pool.

    Requests run on the Db fixture's event loop, the loop the pool belongs to.
    """

    def __init__(self, db: Db, app=None):
        from web.segments.app import create_app

        self.db = db
        self.nudges = 0
        self.app = app or create_app(db.pool, self._nudge)

    def _nudge(self):
        self.nudges += 1

    def request(self, method: str, path: str, **kwargs):
        from falcon import testing

        async def go():
            async with testing.ASGIConductor(self.app) as conductor:
                return await conductor.simulate_request(method, path, **kwargs)

        return self.db.run(go())

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, document=None, **kwargs):
        if document is not None:
            kwargs["json"] = document
        return self.request("POST", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


@pytest.fixture(scope="module")
def client(db):
    return AppClient(db)


@pytest.fixture
def client_of(db):
    """`client_of(app)`: an AppClient of another app, on the module's event loop."""
    return lambda app: AppClient(db, app)


@pytest.fixture
def procs(tmp_path):
    """A ProcGroup for the test's processes; a process that did not stop cleanly fails it."""
    from actors.runtime.testing import ProcGroup

    group = ProcGroup(tmp_path / "logs")
    yield group
    problems = group.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)
