"""One standalone replica for every fuzz test of this package; at teardown, after all of
them in whatever order, it must have survived (oracle.assert_survived)."""

from __future__ import annotations

import pytest
import requests

from actors.grades.testing import Cluster
from tests.grades.fuzz.oracle import assert_survived, worker_pids


@pytest.fixture(scope="package")
def replica(tmp_path_factory):
    """A standalone replica shared by every test of this package but the replicated one."""
    cluster = Cluster(tmp_path_factory.mktemp("fuzz"))
    replica = cluster.replica(1, bus=None)
    replica.setter_base = replica.set_url.rsplit("/", 1)[0]
    replica.workers_at_start = worker_pids(replica)
    try:
        yield replica
        assert_survived(replica)
    finally:
        problems = cluster.stop_all()
        assert not problems, problems


@pytest.fixture
def session():
    with requests.Session() as session:
        yield session
