"""HTTP workers' side of the nudge: tell the worker actor owning a shard to look now.

The shard -> endpoint map comes from the lease tables (`store.shard_endpoints`) and is
cached for REFRESH_S; a shard missing from the map (no lease yet) is looked up again
after MISS_REFRESH_S. A nudge is fire-and-forget (`AsyncClient.tell`): lost or sent to
a worker that just lost the shard, it costs latency only, since every worker polls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from actors.balances import store
from actors.balances.messages import Nudge
from actors.runtime.client import AsyncClient

__all__ = ["Nudger"]

log = logging.getLogger("balances.nudger")

REFRESH_S = 1.0
"""Leases move rarely (a worker starts or dies): re-read the owners this often."""
MISS_REFRESH_S = 0.1
"""A shard without a known owner: look again after this long, not sooner."""


class Nudger:
    """One per HTTP worker process; connects lazily inside its event loop."""

    def __init__(self, db: Any):
        self.db = db
        self.endpoints: dict[int, str] = {}
        self.fetched_at = float("-inf")
        self.clients: dict[str, AsyncClient] = {}
        self._refreshing: asyncio.Lock | None = None

    async def nudge(self, user_id: int) -> None:
        """After a task of this user committed. Never raises."""
        shard = store.shard_of(user_id)
        age = time.monotonic() - self.fetched_at
        if age > REFRESH_S or (shard not in self.endpoints and age > MISS_REFRESH_S):
            await self._refresh()
        endpoint = self.endpoints.get(shard)
        if endpoint is None:
            return
        client = self.clients.get(endpoint)
        if client is None:
            client = self.clients[endpoint] = AsyncClient(endpoint, peer="balances worker")
        client.tell(Nudge(shard))

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
