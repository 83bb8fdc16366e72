"""balances' own metric families, read from the database at scrape time: the queue of
accepted tasks not yet applied. HTTP request counts come from web.common.metrics
(``balances_http_requests_total``)."""

from __future__ import annotations

from actors.balances import store
from web.common.database import Database
from web.common.metrics import QueryGauges

__all__ = ["SERVICE", "queue_gauges"]

SERVICE = "balances"
"""The prefix of balances' metric families."""


def queue_gauges(pool: Database) -> QueryGauges:
    """The task queue, as store.queue_state reports it."""
    return QueryGauges(
        lambda: store.queue_state(pool),
        [
            ("balances_tasks_queued", "Tasks accepted, not yet applied"),
            ("balances_oldest_queued_seconds", "How long the oldest queued task has waited"),
        ],
    )
