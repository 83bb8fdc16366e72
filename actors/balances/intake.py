"""HTTP workers' side of accepting tasks: concurrent POSTs share one commit.

Each POST submits its task to the worker process's Intake and is answered once the
statement holding it committed (acknowledged = durable): one INSERT of every task
submitted meanwhile (``store.enqueue_batch``, group commit by
``actors.runtime.pg.group_commit``), then one nudge per worker actor for the batch's
shards. Per-user order, exactly-once application and Idempotency-Key replays are the
store's, exactly as for a single enqueue.

NOTE: ``python -m bench.run balances --profile`` before this: per task, one INSERT
and its commit (asyncpg ``_do_execute`` 17-21 % of the HTTP worker's samples) and one
ipc nudge (``Socket.send`` 14-22 %). With it (and the nudge gap), the CPU per task of
every process fell by a third: bench/README.md, "Issue 20, balances' accept path".
"""

from __future__ import annotations

from typing import Any

from actors.balances import store
from actors.balances.nudger import Nudger
from actors.runtime.pg.group_commit import GroupCommit

__all__ = ["FLUSHES", "Intake"]

FLUSHES = 2
"""Batches in flight at once per HTTP worker. With one, a POST that comes while a batch
is under way waits for it and then for its own (two commits' latency); with two, the
wait overlaps, and PostgreSQL still shares one WAL flush among concurrent commits. More
make the batches small again (bench: 2 and 3 read alike, 1 and 8 slower)."""


class Intake:
    """One per HTTP worker process; uses its pool and nudger from its event loop.

    Args:
        db: the worker's LazyPool.
        nudger: wakes the worker actors of the committed tasks' shards.
    """

    def __init__(self, db: Any, nudger: Nudger):
        self.db = db
        self.nudger = nudger
        self.group: GroupCommit[store.TaskRequest, store.Accepted] = GroupCommit(
            self._flush, max_flushes=FLUSHES
        )

    async def enqueue(
        self, user_id: int, type_: str, amount: int, idempotency_key: str | None
    ) -> store.Accepted:
        """The task queued and committed, or the first task of a replayed key.

        Raises:
            UnknownUser, IdempotencyMismatch: as store.enqueue_task.
            Any database error: the outcome is unknown (retry with the key).
        """
        return await self.group.submit(store.TaskRequest(user_id, type_, amount, idempotency_key))

    async def _flush(self, requests: list[store.TaskRequest]) -> list[store.Accepted | Exception]:
        outcomes = await store.enqueue_batch(self.db, requests)
        created = [o[0].user_id for o in outcomes if not isinstance(o, Exception) and o[1]]
        if created:
            await self.nudger.nudge(created)
        return outcomes
