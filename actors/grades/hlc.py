"""Hybrid logical clock: stamps that follow wall time yet never go backwards.

A stamp packs wall-clock milliseconds and a counter into one integer,
``ms << COUNTER_BITS | counter``, so stamps compare as plain integers. A replica
stamps each local write with ``now()`` and feeds every stamp it receives to
``observe()``, so a write that causally follows another always gets a larger
stamp, even when this machine's clock is behind (Kulkarni et al., 2014).
"""

from __future__ import annotations

import time

__all__ = ["COUNTER_BITS", "HybridClock", "stamp_ms"]

COUNTER_BITS = 12
"""Low bits of a stamp that count events within one millisecond (past 4096 in one
millisecond the stamp borrows from the next one, as HLC allows)."""


def stamp_ms(stamp: int) -> int:
    """The wall-clock milliseconds part of a stamp."""
    return stamp >> COUNTER_BITS


class HybridClock:
    """One per replica; not thread-safe (the storage actor owns it)."""

    def __init__(self, skew_ms: int = 0):
        """Args:
        skew_ms: added to the wall clock; tests use it to fake a clock that is off.
        """
        self._skew_ms = skew_ms
        self._last = 0

    def _wall(self) -> int:
        return (time.time_ns() // 1_000_000 + self._skew_ms) << COUNTER_BITS

    def now(self) -> int:
        """A stamp greater than every stamp this clock issued or observed."""
        wall = self._wall()
        self._last = wall if wall > self._last else self._last + 1
        return self._last

    def observe(self, stamp: int) -> None:
        """Take a stamp seen from elsewhere into account."""
        if stamp > self._last:
            self._last = stamp

    @property
    def last(self) -> int:
        """The greatest stamp issued or observed so far."""
        return self._last
