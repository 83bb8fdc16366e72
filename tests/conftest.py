"""Fixtures shared by every test package; service fixtures live in tests/<service>/."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator

import pytest

from tests.app_client import AnyApp, AppClient

pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_grades"]


@pytest.fixture
def client_of(loop: asyncio.Runner) -> Iterator[Callable[[AnyApp], AppClient]]:
    """`client_of(app)`: an AppClient of another app on the module's event loop (an app
    built with other options than the module's `client`); closed after the test."""
    with contextlib.ExitStack() as clients:
        yield lambda app: clients.enter_context(AppClient(app, loop))
