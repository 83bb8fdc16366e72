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
    """A task was committed for a user of this shard: apply the queue now."""

    shard: int
    """user_id % store.SHARDS of the task's user."""
