"""Messages to gophermart's accrual poller (one-way, over its private ROUTER).

    HTTP worker (AsyncClient.tell)        poller (AsyncActor ROUTER)
    Nudge(number)            ------>    wakes the poll loop now

A nudge only shortens the wait: a lost one is covered by the poller's idle poll.
"""

from __future__ import annotations

from typing import NamedTuple

from actors.runtime import protocol

__all__ = ["Nudge"]


@protocol.tagged("gm_nudge")
class Nudge(NamedTuple):
    """An order was just uploaded: ask the accrual system about it now."""

    number: str
    """The uploaded order number (for the log; the poller claims whatever is due)."""
