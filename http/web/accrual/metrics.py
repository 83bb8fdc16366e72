"""accrual's own metric families: none beyond the HTTP ones (web.common.metrics), which
carry this name: ``accrual_http_requests_total``."""

from __future__ import annotations

__all__ = ["SERVICE"]

SERVICE = "accrual"
"""The prefix of accrual's metric families."""
