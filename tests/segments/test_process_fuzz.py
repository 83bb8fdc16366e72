"""schemathesis against a running `segments`: every generated case, positive and negative,
gets a documented status (never a 5xx) with a body that conforms to /openapi.json."""

from __future__ import annotations

import pytest
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from actors.segments.testing import Segments
from tests.openapi_fuzz import fuzz_document

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def service(pg_dsn, tmp_path_factory):
    from actors.runtime.testing import ProcGroup

    group = ProcGroup(tmp_path_factory.mktemp("fuzz-logs"))
    service = group.add(Segments(pg_dsn, group.dir, workers=2))
    service.start()
    service.wait_ready()
    # something to find: known slugs make positive cases reach the store, not only 404s
    for slug in ("AVITO_VOICE_MESSAGES", "A", "0", "_", "-", "."):
        service.post("/api/segments", {"slug": slug, "percent": 50})
    yield service
    problems = group.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


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
        checks=CHECKS,
    )
