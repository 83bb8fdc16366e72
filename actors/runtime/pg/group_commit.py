"""Group commit: the writes of concurrent requests of one process, one transaction each.

``GroupCommit(flush).submit(item)`` returns what ``flush`` answered for ``item``, after
the transaction holding it committed. One flush runs at a time: the first item starts
one at once (no timer, no added latency when alone); items submitted while it runs wait
and go together into the next. So the batch grows with the load by itself, and a
request costs a share of a round trip and of a WAL flush instead of a whole one.

``flush(items)`` gets the items in submission order and returns one outcome per item,
in that order: a result, or an exception for that item alone (raised to its caller).
An exception raised by ``flush`` itself goes to every caller of that batch: nothing
of it is known to have committed.

NOTE: a caller cancelled while it waits (its client left) does not take its item out of
a batch already under way: like a single statement cancelled mid-flight, it may commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["MAX_BATCH", "GroupCommit"]

Item = TypeVar("Item")
Result = TypeVar("Result")

MAX_BATCH = 500
"""Items of one flush at most: one statement of a few hundred rows stays well under a
query timeout, and the rest go into the next flush at once."""


class GroupCommit(Generic[Item, Result]):
    """Gathers concurrent ``submit`` calls of one event loop into batches for ``flush``.

    Args:
        flush: writes a batch in one transaction; returns an outcome per item.
        max_batch: items per flush at most.
    """

    def __init__(
        self,
        flush: Callable[[list[Item]], Awaitable[Sequence[Result | Exception]]],
        max_batch: int = MAX_BATCH,
        max_flushes: int = 1,
    ):
        self.flush = flush
        self.max_batch = max_batch
        self.max_flushes = max_flushes
        self.flushes = 0
        """Batches flushed so far (items / flushes is the mean batch)."""
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runners: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Result:
        """``item``'s outcome, once the flush that holds it returned.

        Raises:
            Exception: the item's own error, or its batch's.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._pending.append((item, future))
        # NOTE: a finished runner leaves the set in a callback, later; and a runner of
        # another (closed) loop never finishes: tests run apps in turn.
        self._runners = {r for r in self._runners if not r.done() and r.get_loop() is loop}
        if len(self._runners) < self.max_flushes:
            self._runners.add(loop.create_task(self._run()))
        return await future

    async def _run(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                outcomes = await self.flush([item for item, _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"flush answered {len(outcomes)} of {len(batch)} items")
            except Exception as exc:  # the whole batch failed: each caller hears it
                outcomes = [exc] * len(batch)
            except BaseException:  # cancelled (loop shutting down): callers too
                for _, future in batch + self._pending:
                    if not future.done():
                        future.cancel()
                self._pending.clear()
                raise
            self.flushes += 1
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():  # its caller was cancelled
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
