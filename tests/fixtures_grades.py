"""The grades ``cluster`` fixture, for the grades and bus tests: real buses and replicas
on free 127.0.0.1 ports (actors.grades.testing.Cluster).

A process that had to be killed at teardown (or exited non-zero) fails the test with
its output. ``cluster`` takes an indirect parameter naming the bus backend
("builtin", the default, or "jetstream": three nats-server nodes), so a test runs on
both with ``@pytest.mark.parametrize("cluster", BACKENDS, indirect=True)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.grades.testing import Cluster

__all__ = ["cluster"]


@pytest.fixture
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, backend=getattr(request, "param", "builtin"))
    yield cluster
    problems = cluster.stop_all()
    if problems:
        pytest.fail("\n".join(problems))
