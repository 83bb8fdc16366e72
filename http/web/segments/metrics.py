"""segments' own metric families: none beyond the HTTP ones (web.common.metrics), which
carry this name: ``segments_http_requests_total``."""

from __future__ import annotations

__all__ = ["SERVICE"]

SERVICE = "segments"
"""The prefix of segments' metric families."""
