"""Fixtures for gophermart: PostgreSQL (pg_server, pg_dsn), an event loop per module, the
migrated store."""

from __future__ import annotations

import pytest

from actors.gophermart.store import SCHEMA_DIR
from tests.fixtures_pg import migrated_pool

__all__ = ["db"]


@pytest.fixture(scope="module")
def db(pg_dsn, loop):
    """A LazyPool on the module's database, gophermart schema applied."""
    yield from migrated_pool(pg_dsn, loop, "gophermart", SCHEMA_DIR, max_size=24)


class AppClient:
    """The gophermart app in process (falcon ASGIConductor) over the module's pool.

    `nudged` lists the order numbers the app asked the poller about.
    """

    SECRET = "test-secret-of-thirty-two-bytes!"

    def __init__(self, db, loop, token_ttl_s: int = 3600):
        from web.gophermart.app import create_app

        self.loop = loop
        self.nudged: list[str] = []
        self.app = create_app(db, self.SECRET, token_ttl_s, self.nudged.append)

    def request(self, method: str, path: str, **kwargs):
        from falcon import testing

        async def go():
            async with testing.ASGIConductor(self.app) as conductor:
                return await conductor.simulate_request(method, path, **kwargs)

        return self.loop.run(go())

    def register(self, login: str, password: str = "password-1"):
        return self.request(
            "POST", "/api/user/register", json={"login": login, "password": password}
        )


@pytest.fixture(scope="module")
def client(db, loop):
    return AppClient(db, loop)
