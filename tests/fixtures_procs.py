"""Process-group fixtures: a module's (or a test's) real processes, stopped at the end.

A pytest plugin module, loaded by the root conftest (``pytest_plugins``). Every process
added to the group must stop cleanly (its exit code among its ``ok_codes``) when the
group is stopped in reverse order; one that does not fails the test with its output.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.runtime.testing import ProcGroup

__all__ = ["procs", "stopped_cleanly"]


@contextlib.contextmanager
def stopped_cleanly(directory: Path) -> Iterator[ProcGroup]:
    """A ProcGroup logging under ``directory``; at exit every process is stopped and
    any that did not exit cleanly fails the test, naming it, with its output."""
    group = ProcGroup(directory)
    try:
        yield group
    finally:
        problems = group.stop_all()
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture(scope="module")
def procs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The module's processes (``procs.add(Launcher(...))``), stopped after its last test."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    with stopped_cleanly(tmp_path_factory.mktemp(module)) as group:
        yield group
