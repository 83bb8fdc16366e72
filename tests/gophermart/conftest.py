"""Fixtures for gophermart: PostgreSQL (pg_server, pg_dsn), an event loop per module, the
migrated store, the app in process."""

from __future__ import annotations

import pytest

from actors.gophermart.store import SCHEMA_DIR
from tests.app_client import AppClient
from tests.fixtures_pg import migrated_pool
from web.gophermart.app import create_app

__all__ = ["client", "db"]


@pytest.fixture(scope="module")
def db(pg_dsn, loop):
    """A LazyPool on the module's database, gophermart schema applied."""
    yield from migrated_pool(pg_dsn, loop, "gophermart", SCHEMA_DIR, max_size=24)


class GophermartClient(AppClient):
    """The gophermart app over the module's pool, with its signing secret at hand.

    `nudged` lists the order numbers the app asked the poller about.
    """

    SECRET = "test-secret-of-thirty-two-bytes!"
    TOKEN_TTL_S = 3600

    def __init__(self, db, loop):
        self.nudged: list[str] = []
        super().__init__(create_app(db, self.SECRET, self.TOKEN_TTL_S, self.nudged.append), loop)

    def register(self, login: str, password: str = "password-1"):
        return self.post("/api/user/register", {"login": login, "password": password})


@pytest.fixture(scope="module")
def client(db, loop):
    with GophermartClient(db, loop) as client:
        yield client
