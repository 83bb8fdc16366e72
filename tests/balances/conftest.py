"""Fixtures for balances: PostgreSQL (pg_server, pg_dsn), an event loop per module, the
migrated store, the app in process; the module's processes are tests/fixtures_procs.py's."""

from __future__ import annotations

import pytest

from actors.balances.testing import SCHEMA_DIR
from tests.app_client import AppClient
from tests.fixtures_pg import migrated_pool
from web.balances.app import create_app

__all__ = ["call", "client", "db"]


@pytest.fixture(scope="module")
def db(pg_dsn, loop):
    """A LazyPool on the module's database, balances schema applied."""
    yield from migrated_pool(pg_dsn, loop, "balances", SCHEMA_DIR, max_size=8)


@pytest.fixture(scope="module")
def client(db, loop):
    """The balances app over the module's pool (its nudges go over the pool too)."""
    with AppClient(create_app(db), loop) as client:
        yield client


@pytest.fixture(scope="module")
def call(client):
    """call(method, path, **simulate_kwargs) -> falcon testing Result."""
    return client.request
