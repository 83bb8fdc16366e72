"""Fixtures for accrual: PostgreSQL (pg_server, pg_dsn), an event loop per module, the
migrated store, the app in process."""

from __future__ import annotations

import pytest

from actors.accrual.store import SCHEMA_DIR
from tests.app_client import AppClient
from tests.fixtures_pg import migrated_pool
from web.accrual.app import create_app

__all__ = ["client", "db"]


@pytest.fixture(scope="module")
def db(pg_dsn, loop):
    """A LazyPool on the module's database, accrual schema applied."""
    yield from migrated_pool(pg_dsn, loop, "accrual", SCHEMA_DIR, max_size=24)


@pytest.fixture(scope="module")
def client(db, loop):
    """The accrual app over the module's pool: no rate limit, final statuses at once."""
    with AppClient(create_app(db, rate_limit=0, delay_s=0.0), loop) as client:
        yield client
