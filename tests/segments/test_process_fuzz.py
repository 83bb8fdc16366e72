"""schemathesis against a running `segments`: every generated case, positive and negative,
gets a documented status (never a 5xx) with a body that conforms to /openapi.json."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from actors.segments.testing import Segments

FUZZ_EXAMPLES = 30  # per operation and generation mode: keeps the module under ~20 s
TIMEOUT_S = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


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
    config = schemathesis.Config.from_dict({
        "base-url": service.base,
        "request-timeout": TIMEOUT_S,
        "suppress-health-check": ["all"],
        "phases": {"stateful": {"enabled": False}},
    })
    schema = schemathesis.openapi.from_url(service.url("/openapi.json"), config=config,
                                           timeout=TIMEOUT_S)
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "POST /api/segments", "GET /api/segments", "DELETE /api/segments/{slug}",
        "GET /api/users/{user_id}/segments", "POST /api/users/{user_id}/segments",
        "GET /api/history", "GET /api/history/{period}.csv"}
    for operation in operations:
        for mode in GenerationMode:

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call()
                case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid (GET /api/segments)
                assert mode == GenerationMode.NEGATIVE, operation.label
