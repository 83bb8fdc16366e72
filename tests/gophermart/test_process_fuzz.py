"""schemathesis against running `gophermart` and `accrual`: every generated case,
positive and negative, gets a documented status (never a 5xx) with a body that conforms
to the /openapi.json each serves. gophermart's protected routes get a valid token, so
the cases reach validation and the store, not only the 401."""

from __future__ import annotations

import uuid

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

from actors.accrual.testing import Accrual
from actors.gophermart.testing import Gophermart
from actors.runtime.testing import ProcGroup

FUZZ_EXAMPLES = 30  # per operation and generation mode
TIMEOUT_S = 10
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture(scope="module")
def services(pg_dsn, tmp_path_factory):
    group = ProcGroup(tmp_path_factory.mktemp("gm-fuzz-logs"))
    accrual = group.add(Accrual(pg_dsn, group.dir, ACCRUAL_RATE_LIMIT=100000))
    accrual.start()
    gophermart = group.add(Gophermart(pg_dsn, accrual.base, group.dir, workers=2))
    gophermart.start()
    accrual.wait_ready()
    gophermart.wait_ready()
    yield accrual, gophermart
    problems = group.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def fuzz_all(base: str, expected: set[str], headers: dict | None = None) -> None:
    config = schemathesis.Config.from_dict({
        "base-url": base, "request-timeout": TIMEOUT_S,
        "suppress-health-check": ["all"], "phases": {"stateful": {"enabled": False}},
    })
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config,
                                           timeout=TIMEOUT_S)
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == expected
    for operation in operations:
        for mode in GenerationMode:

            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call(headers=headers)
                case.validate_response(response, checks=CHECKS)

            try:
                fuzz()
            except Unsatisfiable:  # nothing to make invalid (a GET without parameters)
                assert mode == GenerationMode.NEGATIVE, operation.label


def test_gophermart_conforms_to_its_document(services):
    _, gophermart = services
    token = gophermart.register(f"fuzz-{uuid.uuid4().hex[:8]}", "fuzz-password")
    fuzz_all(gophermart.base, {
        "POST /api/user/register", "POST /api/user/login", "POST /api/user/orders",
        "GET /api/user/orders", "GET /api/user/balance", "POST /api/user/balance/withdraw",
        "GET /api/user/withdrawals", "GET /healthz", "GET /readyz"},
        headers={"Authorization": token})
    assert gophermart.get("/api/user/balance").json() == {"current": 0, "withdrawn": 0}


def test_accrual_conforms_to_its_document(services):
    accrual, _ = services
    fuzz_all(accrual.base, {"POST /api/goods", "POST /api/orders", "GET /api/orders/{number}",
                            "GET /healthz", "GET /readyz"})
