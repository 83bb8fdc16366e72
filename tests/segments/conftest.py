"""Fixtures for segments: PostgreSQL (pg_server, pg_dsn), an event loop per module, the
migrated store, the app in process, the test's processes."""

from __future__ import annotations

import pytest

from actors.segments.store import SCHEMA_DIR
from tests.app_client import AppClient
from tests.fixtures_pg import migrated_pool
from tests.fixtures_procs import stopped_cleanly
from web.segments.app import create_app

__all__ = ["client", "db", "procs"]


@pytest.fixture(scope="module")
def db(pg_dsn, loop):
    """A LazyPool on the module's database, segments schema applied."""
    yield from migrated_pool(pg_dsn, loop, "segments", SCHEMA_DIR, max_size=8)


class SegmentsClient(AppClient):
    """The segments app over the module's pool; `nudges` counts the reaper wake-ups."""

    def __init__(self, db, loop):
        self.nudges = 0
        super().__init__(create_app(db, self._nudge), loop)

    def _nudge(self) -> None:
        self.nudges += 1


@pytest.fixture(scope="module")
def client(db, loop):
    with SegmentsClient(db, loop) as client:
        yield client


@pytest.fixture
def procs(tmp_path):
    """A ProcGroup for the test's processes; a process that did not stop cleanly fails it."""
    with stopped_cleanly(tmp_path / "logs") as group:
        yield group
