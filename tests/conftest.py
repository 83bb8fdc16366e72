"""Fixtures shared by every test package; service fixtures live in tests/<service>/."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable, Iterator

import pytest

from actors.runtime.hosts import Namespaces, namespaces_unavailable
from tests.app_client import AnyApp, AppClient

pytest_plugins = ["tests.fixtures_pg", "tests.fixtures_grades", "tests.fixtures_procs"]


@pytest.fixture
def client_of(loop: asyncio.Runner) -> Iterator[Callable[[AnyApp], AppClient]]:
    """`client_of(app)`: an AppClient of another app on the module's event loop (an app
    built with other options than the module's `client`); closed after the test."""
    with contextlib.ExitStack() as clients:
        yield lambda app: clients.enter_context(AppClient(app, loop))


@pytest.fixture
def network_hosts() -> Iterator[Callable[[int, str], Namespaces]]:
    """`network_hosts(count, what)`: that many network namespaces on a bridge, removed
    after the test; the test is skipped as "<what>: <why>" where none can be made."""
    with contextlib.ExitStack() as made:

        def make(count: int, what: str) -> Namespaces:
            why_not = namespaces_unavailable()
            if why_not is not None:
                pytest.skip(f"{what}: {why_not}")
            return made.enter_context(Namespaces(f"t{secrets.token_hex(3)}", count))

        yield make
