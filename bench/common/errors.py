"""The one exception of the benchmarks."""

from __future__ import annotations

from actors.runtime.testing import HarnessError

__all__ = ["BenchError"]


class BenchError(HarnessError):
    """A measurement cannot go on; the message says why (and shows process output)."""
