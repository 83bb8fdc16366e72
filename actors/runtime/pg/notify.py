"""The sending side of wake-ups through the database: NOTIFY after the work committed.

``Notifier.notify(channel)`` returns at once; a task of the process sends every channel
asked for since its last round in ONE statement on a pooled connection, so a burst of
requests costs one round trip, off their path. Listeners: ``actors.runtime.pg.listen``.

NOTE: not in the work's own transaction, though that would deliver it exactly at commit:
PostgreSQL serialises the commits of all transactions that NOTIFY (a database-wide lock
held through the commit's WAL flush). Sent after the commit, in a transaction of its own
with synchronous_commit off (a notification needs no durability), the lock is held for
microseconds. A notification lost with a crashing process costs what a lost ipc nudge
does: the owner's periodic poll finds the work. ``python -m bench.pg_notify``, 16
clients enqueueing balances tasks, medians of 3 rounds on a shared 2-core box, CPU of
client and PostgreSQL per enqueue:

    plain                     1,473 enqueues/s   182 us CPU
    NOTIFY after the commit   1,367 enqueues/s   265 us CPU   (this module)
    pg_notify in the INSERT     482 enqueues/s   414 us CPU

And one wake-up at a time: 227 us CPU and 1.3 ms wall through PostgreSQL, against 50 us
and 0.09 ms for an ipc nudge. So callers notify only what a local wake-up cannot reach:
balances nudges the workers of its own instance over ipc (one instance alone sends no
NOTIFY); gophermart notifies every upload, since any instance's poller may take it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["NOTIFY_TIMEOUT_S", "Notifier"]

NOTIFY_TIMEOUT_S = 2.0
"""One round of notifications; a slower one is dropped (the polls cover it)."""

_NOTIFY = (
    "SELECT set_config('synchronous_commit', 'off', true), pg_notify(c, '')"
    " FROM unnest($1::text[]) AS c"
)
"""set_config(..., true) lasts to the end of this one-statement transaction, its commit
included: no WAL flush is waited for, and no session state is left on the connection."""


class Notifier:
    """Coalescing, fire-and-forget NOTIFY for one process (use it from its event loop).

    Args:
        db: a LazyPool (anything with ``acquire()``).
        name: for the log.
    """

    def __init__(self, db: Any, name: str = "notifier"):
        self.db = db
        self.log = logging.getLogger(f"pg.notify[{name}]")
        self.sent = 0
        """Notifications sent so far."""
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def notify(self, channel: str) -> None:
        """Ask for a NOTIFY on `channel` soon (after work that already committed)."""
        self._pending.add(channel)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self._pending:
            channels, self._pending = sorted(self._pending), set()
            try:
                async with self.db.acquire() as conn:
                    await conn.execute(_NOTIFY, channels, timeout=NOTIFY_TIMEOUT_S)
            except Exception as exc:  # the polls cover a lost notification
                if not self._failing:
                    self.log.warning("could not notify %d channels: %s", len(channels), exc)
                self._failing = True
                continue
            self._failing = False
            self.sent += len(channels)
