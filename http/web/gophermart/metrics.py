"""gophermart's own metric families, read from the database at scrape time: the orders
waiting for a final accrual and the pause a 429 of accrual imposed. HTTP request
counts come from web.common.metrics (``gophermart_http_requests_total``)."""

from __future__ import annotations

from actors.gophermart import store
from web.common.database import Database
from web.common.metrics import QueryGauges

__all__ = ["SERVICE", "poll_gauges"]

SERVICE = "gophermart"
"""The prefix of gophermart's metric families."""


def poll_gauges(pool: Database) -> QueryGauges:
    """The poller's backlog, as store.poll_state reports it."""
    return QueryGauges(
        lambda: store.poll_state(pool),
        [
            (
                "gophermart_orders_pending",
                "Orders NEW or PROCESSING (waiting for a final accrual)",
            ),
            ("gophermart_oldest_pending_seconds", "How long the oldest pending order has waited"),
            ("gophermart_accrual_pause_seconds", "Seconds left of the pause a 429 imposed"),
        ],
    )
