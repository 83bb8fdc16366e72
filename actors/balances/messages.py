"""balances' messages: HTTP workers -> worker actors.

Framed by actors.runtime.protocol (``[VERSION, tag, request_id, *fields]``), sent
one-way (``AsyncClient.tell``, request_id 0) to the worker actor holding the lease of
the task's shard. A lost nudge costs latency only: every worker also polls.
"""

from __future__ import annotations

from typing import NamedTuple

from actors.runtime import protocol

__all__ = ["Nudge"]


@protocol.tagged("balances_nudge")
class Nudge(NamedTuple):
    """Tasks were committed for users of these shards: apply the queue now."""

    shards: list[int]
    """user_id % store.SHARDS of the tasks' users, each once (one nudge per batch of
    tasks committed together, per worker)."""
