"""HTTP workers' side of the nudge: tell the worker actor owning a shard to look now.

The shard -> endpoint map comes from the lease tables (`store.shard_endpoints`) and is
cached for REFRESH_S; a shard missing from the map (no lease yet) is looked up again
after MISS_REFRESH_S. A shard held by a worker of this instance is nudged over its ipc
socket (`AsyncClient.tell`); any other (another instance, maybe on another host, or no
owner known) through the database: NOTIFY on the shard's channel, which its holder
listens to (actors.runtime.pg.notify, .listen). Both are fire-and-forget: lost or sent
to a worker that just lost the shard, a nudge costs latency only, since every worker
polls.

NOTE: the ipc nudge is kept beside NOTIFY for the local case because it is the cheaper
wake-up: 50 us of CPU and 0.09 ms against 227 us (PostgreSQL's included) and 1.3 ms for
a NOTIFY, one at a time (``python -m bench.pg_notify``). End to end (task accepted to
applied, ``python -m bench.balances.wakeup --same-instance``, 200 tasks, alternated on a
shared box) the two were equal within its noise: p50 3.9-6.1 ms, p99 21-38 ms either way.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Iterable
from typing import Any

from actors.balances import store
from actors.balances.messages import Nudge
from actors.runtime.client import AsyncClient
from actors.runtime.pg.notify import Notifier

__all__ = ["Nudger"]

log = logging.getLogger("balances.nudger")

REFRESH_S = 1.0
"""Leases move rarely (a worker starts or dies): re-read the owners this often."""
MISS_REFRESH_S = 0.1
"""A shard without a known owner: look again after this long, not sooner."""


class Nudger:
    """One per HTTP worker process; connects lazily inside its event loop.

    Args:
        db: the worker's LazyPool (lease reads and NOTIFY).
        local: the ipc endpoints of this instance's worker actors (none: NOTIFY only).
    """

    def __init__(self, db: Any, local: Collection[str] = ()):
        self.db = db
        self.local = frozenset(local)
        self.notifier = Notifier(db, "balances nudger")
        self.endpoints: dict[int, str] = {}
        self.fetched_at = float("-inf")
        self.clients: dict[str, AsyncClient] = {}
        self._refreshing: asyncio.Lock | None = None

    async def nudge(self, user_ids: Iterable[int]) -> None:
        """After tasks of these users committed: one message per worker. Never raises."""
        shards = sorted({store.shard_of(u) for u in user_ids})
        age = time.monotonic() - self.fetched_at
        if age > REFRESH_S or (
            age > MISS_REFRESH_S and any(s not in self.endpoints for s in shards)
        ):
            await self._refresh()
        by_endpoint: dict[str, list[int]] = {}
        for shard in shards:
            endpoint = self.endpoints.get(shard)
            if endpoint is not None and endpoint in self.local:
                by_endpoint.setdefault(endpoint, []).append(shard)
            else:
                self.notifier.notify(store.shard_channel(shard))
        for endpoint, held in by_endpoint.items():
            client = self.clients.get(endpoint)
            if client is None:
                client = self.clients[endpoint] = AsyncClient(endpoint, peer="balances worker")
            client.tell(Nudge(held))

    async def _refresh(self) -> None:
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        if self._refreshing.locked():
            return  # another request is at it; use what we have
        async with self._refreshing:
            try:
                self.endpoints = await store.shard_endpoints(self.db)
            except Exception as exc:  # the poll covers it
                log.warning("could not read shard owners: %s", exc)
            self.fetched_at = time.monotonic()
            for endpoint in set(self.clients) - set(self.endpoints.values()):
                self.clients.pop(endpoint).close()

    def close(self) -> None:
        for client in self.clients.values():
            client.close()
        self.clients.clear()
