"""segments' messages: HTTP workers -> reaper.

Framed by actors.runtime.protocol; one-way (a tell, request_id 0) on the reaper's ROUTER
at `Config.reaper_endpoint`, private to the instance.
"""

from __future__ import annotations

from typing import NamedTuple

from actors.runtime import protocol

__all__ = ["Nudge"]


@protocol.tagged("segments_reaper_nudge")
class Nudge(NamedTuple):
    """A membership with an expiry was added: look at the next expiry again now.

    Losing one costs at most the reaper's longest sleep (reaper.MAX_SLEEP_S).
    """
