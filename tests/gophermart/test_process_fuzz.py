"""schemathesis against running `gophermart` and `accrual`: every generated case,
positive and negative, gets a documented status (never a 5xx) with a body that conforms
to the /openapi.json each serves. gophermart's protected routes get a valid token, so
the cases reach validation and the store, not only the 401."""

from __future__ import annotations

import uuid

import pytest

from actors.accrual.testing import Accrual
from actors.gophermart.testing import Gophermart
from tests.openapi_fuzz import CONFORMANCE_CHECKS, fuzz_document


@pytest.fixture(scope="module")
def services(procs, pg_dsn):
    accrual = procs.add(Accrual(pg_dsn, procs.dir, ACCRUAL_RATE_LIMIT=100000))
    accrual.start()
    gophermart = procs.add(Gophermart(pg_dsn, accrual.base, procs.dir, workers=2))
    gophermart.start()
    accrual.wait_ready()
    gophermart.wait_ready()
    return accrual, gophermart


def fuzz_all(base: str, expected: set[str], headers: dict | None = None) -> None:
    fuzz_document(base, expected, headers=headers, checks=CONFORMANCE_CHECKS)


def test_gophermart_conforms_to_its_document(services):
    _, gophermart = services
    token = gophermart.register(f"fuzz-{uuid.uuid4().hex[:8]}", "fuzz-password")
    fuzz_all(
        gophermart.base,
        {
            "POST /api/user/register",
            "POST /api/user/login",
            "POST /api/user/orders",
            "GET /api/user/orders",
            "GET /api/user/balance",
            "POST /api/user/balance/withdraw",
            "GET /api/user/withdrawals",
            "GET /healthz",
            "GET /readyz",
        },
        headers={"Authorization": token},
    )
    assert gophermart.get("/api/user/balance").json() == {"current": 0, "withdrawn": 0}


def test_accrual_conforms_to_its_document(services):
    accrual, _ = services
    fuzz_all(
        accrual.base,
        {
            "POST /api/goods",
            "POST /api/orders",
            "GET /api/orders/{number}",
            "GET /healthz",
            "GET /readyz",
        },
    )
