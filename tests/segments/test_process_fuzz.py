"""schemathesis against a running `segments`: every generated case, positive and negative,
gets a documented status (never a 5xx) with a body that conforms to /openapi.json."""

from __future__ import annotations

import pytest

from actors.segments.testing import Segments
from tests.fixtures_procs import stopped_cleanly
from tests.openapi_fuzz import CONFORMANCE_CHECKS, fuzz_document


@pytest.fixture(scope="module")
def service(pg_dsn, tmp_path_factory):
    # NOTE: segments' `procs` is per test; this module shares one service.
    with stopped_cleanly(tmp_path_factory.mktemp("fuzz-logs")) as group:
        service = group.add(Segments(pg_dsn, group.dir, workers=2))
        service.start()
        service.wait_ready()
        # something to find: known slugs make positive cases reach the store, not only 404s
        for slug in ("AVITO_VOICE_MESSAGES", "A", "0", "_", "-", "."):
            service.post("/api/segments", {"slug": slug, "percent": 50})
        yield service


def test_the_api_conforms_to_its_document(service):
    """(Driven by hand with hypothesis: schemathesis's pytest plugin does not run under
    pytest 9.)"""
    fuzz_document(
        service.base,
        {
            "POST /api/segments",
            "GET /api/segments",
            "DELETE /api/segments/{slug}",
            "GET /api/users/{user_id}/segments",
            "POST /api/users/{user_id}/segments",
            "GET /api/history",
            "GET /api/history/{period}.csv",
        },
        checks=CONFORMANCE_CHECKS,
    )
