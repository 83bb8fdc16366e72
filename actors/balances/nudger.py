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
NUDGE_GAP_S = 0.02
"""At most one nudge per worker actor this often from one HTTP worker: the shards of
the batches committed meanwhile wait and go in the next (never dropped). A worker waits
as long between drains anyway (worker.DRAIN_PAUSE_S), so a nudge sooner would only cost
both processes a ZeroMQ message: under load the nudges were 7 % of the HTTP worker's
samples and most of the worker actors' own (`--profile`). The first nudge after a
quiet spell goes at once."""


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
        self._sent_at: dict[str, float] = {}
        self._held: dict[str, tuple[set[int], asyncio.TimerHandle]] = {}
        """endpoint -> (shards, the timer that sends them) while its gap lasts"""

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
            self._tell(endpoint, held)

    def _tell(self, endpoint: str, shards: list[int]) -> None:
        """Nudge now, or add the shards to the nudge waiting for the endpoint's gap."""
        waiting = self._held.get(endpoint)
        if waiting is not None:
            waiting[0].update(shards)
            return
        wait_s = self._sent_at.get(endpoint, float("-inf")) + NUDGE_GAP_S - time.monotonic()
        if wait_s <= 0:
            self._send(endpoint, shards)
            return
        timer = asyncio.get_running_loop().call_later(wait_s, self._send_held, endpoint)
        self._held[endpoint] = (set(shards), timer)

    def _send_held(self, endpoint: str) -> None:
        shards, _ = self._held.pop(endpoint)
        self._send(endpoint, sorted(shards))

    def _send(self, endpoint: str, shards: list[int]) -> None:
        client = self.clients.get(endpoint)
        if client is None:
            client = self.clients[endpoint] = AsyncClient(endpoint, peer="balances worker")
        client.tell(Nudge(shards))
        self._sent_at[endpoint] = time.monotonic()

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
        for _, timer in self._held.values():
            timer.cancel()
        self._held.clear()
        for client in self.clients.values():
            client.close()
        self.clients.clear()
