"""Fixtures for accrual: PostgreSQL (pg_server, pg_dsn), an event loop per module, the
migrated store."""

from __future__ import annotations

import pytest

from actors.accrual.store import SCHEMA_DIR
from tests.fixtures_pg import migrated_pool

__all__ = ["db"]


@pytest.fixture(scope="module")
def db(pg_dsn, loop):
    """A LazyPool on the module's database, accrual schema applied."""
    yield from migrated_pool(pg_dsn, loop, "accrual", SCHEMA_DIR, max_size=24)


class AppClient:
    """The accrual app in process (falcon ASGIConductor) over the module's pool."""

    def __init__(self, db, loop, rate_limit: int = 0, delay_s: float = 0.0):
        from web.accrual.app import create_app

        self.loop = loop
        self.app = create_app(db, rate_limit, delay_s)

    def request(self, method: str, path: str, **kwargs):
        from falcon import testing

        async def go():
            async with testing.ASGIConductor(self.app) as conductor:
                return await conductor.simulate_request(method, path, **kwargs)

        return self.loop.run(go())


@pytest.fixture(scope="module")
def client(db, loop):
    return AppClient(db, loop)
