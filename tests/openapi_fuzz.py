"""schemathesis against a running service's /openapi.json, driven by hand with hypothesis.

(schemathesis's pytest plugin, ``from_fixture``, does not run under pytest 9.) Every
operation gets positive and negative cases; each response must pass the checks: no
5xx, statuses, content types and bodies as documented.
"""

from __future__ import annotations

import os
from collections.abc import Callable

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

__all__ = ["CONFORMANCE_CHECKS", "EXAMPLES", "TIMEOUT_S", "fuzz_document"]

EXAMPLES = max(1, int(30 * float(os.environ.get("FUZZ_SCALE", "1"))))
"""Per operation and generation mode: 30 keeps a service's fuzz module near 20 s;
FUZZ_SCALE=20 digs deeper (as for grades' fuzz tests)."""
TIMEOUT_S = 10
CONFORMANCE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
"""No 5xx, and status, content type and body as the document says."""


def fuzz_document(
    base: str,
    expected: set[str] | int,
    *,
    headers: dict | None = None,
    checks: list | None = None,
    additional_checks: list | None = None,
    skip: Callable | None = None,
    examples: int = EXAMPLES,
    negative_may_be_empty: bool = True,
) -> None:
    """Fuzz every operation of ``{base}/openapi.json``.

    Args:
        expected: the operations' labels ("GET /healthz"), or how many there are.
        headers: sent with every case (e.g. a token).
        checks, additional_checks: as ``Case.validate_response`` takes them.
        skip: a response for which it returns True is not validated (a documented
            discrepancy the schema language cannot express).
        negative_may_be_empty: any operation may have no negative cases; when False,
            only one with nothing to make invalid (no parameters, no body) may.
    """
    config = schemathesis.Config.from_dict(
        {
            "base-url": base,
            "request-timeout": TIMEOUT_S,
            "suppress-health-check": ["all"],
            "phases": {"stateful": {"enabled": False}},
        }
    )
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config, timeout=TIMEOUT_S)
    schema.validate()
    operations = [result.ok() for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert (len(labels) if isinstance(expected, int) else labels) == expected, labels
    for operation in operations:
        # nothing to make invalid: no parameters, no body (GET /docs)
        inert = not operation.definition.raw.get("parameters") and "requestBody" not in (
            operation.definition.raw
        )
        for mode in GenerationMode:

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                response = case.call(headers=headers)
                if skip is not None and skip(response):
                    return
                case.validate_response(response, checks=checks, additional_checks=additional_checks)

            try:
                fuzz()
            except Unsatisfiable:
                if not (mode == GenerationMode.NEGATIVE and (negative_may_be_empty or inert)):
                    raise
