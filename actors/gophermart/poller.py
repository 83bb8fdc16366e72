"""The accrual poller: asks the accrual system about every NEW/PROCESSING order.

One actor process per gophermart instance, a child of its supervisor. Its loop:

    release this instance's old leases (a restart after kill -9)
    loop:
        wait out the accrual pause (this instance's, and the one shared in the database)
        claim up to BATCH due orders (FOR UPDATE SKIP LOCKED lease, see store)
        ask about each, at most `inflight` requests at once (keep-alive connections)
        one statement: final answers -> status + credit; the rest -> ask again later
        nothing due: sleep until a NOTIFY of an upload (on any instance) or idle_s

A 429 stops every request of this instance for its Retry-After and is written to the
database, where the other instances' pollers read it before they claim. 5xx, timeouts
and garbage back off per order and, growing with consecutive failures, for the whole
instance. Exactly once: a credit happens in the statement that makes the order final,
guarded by its status, so a repeated answer or a second poller cannot credit twice, and
a crash before that statement leaves the order to be asked again.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time

from actors.gophermart import store
from actors.gophermart.accrual_client import AccrualClient, Answer
from actors.gophermart.config import Config
from actors.gophermart.store import Final, Retry
from actors.runtime.async_actor import AsyncActor, run_async_actor
from actors.runtime.logs import setup_logging
from actors.runtime.pg.listen import Listener
from actors.runtime.pg.pool import LazyPool

__all__ = ["Poller", "PollerActor", "main"]

BATCH_PER_INFLIGHT = 16
"""Orders claimed per round, per request in flight. A round's claim, finish and
reschedule statements are paid once per batch, and the pipe runs dry while a round's
last answers come in: with 32 in flight and 10k orders queued (bench/gophermart), 16
credits 1.4-1.6x as many orders a second as 4 did, with less PostgreSQL CPU per order."""
ASK_SHARE_OF_LEASE = 0.5
"""A round starts no request after this share of the lease has passed (the rest are due
again at once), so a large batch against a slow accrual system cannot outlast its lease
and let another poller ask about the same orders (with the default 30 s lease and 5 s
request timeout: nothing started after 15 s, everything answered by 20 s)."""
IDLE_S = 0.5
"""Longest sleep with nothing due (default): a lost nudge or a due retry waits at most
this."""
PENDING_FIRST_S, PENDING_MAX_S = 0.25, 5.0
"""REGISTERED/PROCESSING: ask again soon, then less often."""
UNKNOWN_FIRST_S, UNKNOWN_MAX_S = 0.5, 30.0
"""204 (the accrual system does not know the order yet): it may never; back off more."""
FAILED_FIRST_S, FAILED_MAX_S = 1.0, 60.0
"""5xx, timeout, garbage: per order."""
BREAKER_FIRST_S, BREAKER_MAX_S = 0.5, 10.0
"""Consecutive failed rounds pause the whole instance this long, doubling."""
ERROR_PAUSE_S = 1.0
"""After the loop itself fails (the database is down), try again after this."""


def _backoff(first: float, most: float, attempts: int) -> float:
    delay = min(first * (2.0 ** min(attempts, 16)), most)
    return delay * random.uniform(0.9, 1.1)


class Poller:
    """The poll loop, independent of ZMQ (tests drive it directly).

    Args:
        db: a LazyPool.
        client: the accrual HTTP client.
        owner: this instance's lease owner name (its RUN_ADDRESS).
        inflight: requests to the accrual system at once, at most.
        lease_s: how long claimed orders stay ours.
        idle_s: the longest sleep with nothing due.
    """

    def __init__(
        self,
        db: LazyPool,
        client: AccrualClient,
        owner: str,
        *,
        inflight: int = 8,
        lease_s: float = 30.0,
        idle_s: float = IDLE_S,
        log: logging.Logger | None = None,
    ):
        self.db = db
        self.client = client
        self.owner = owner
        self.batch = inflight * BATCH_PER_INFLIGHT
        self.lease_s = lease_s
        self.idle_s = idle_s
        self.log = log or logging.getLogger("gophermart.poller")
        self._slots = asyncio.Semaphore(inflight)
        self._wake = asyncio.Event()
        self._paused_until = 0.0  # time.monotonic()
        self._ask_until = 0.0  # time.monotonic(): no request of this round starts later
        self._failed_rounds = 0
        self.credited = 0
        self.requests = 0

    def nudge(self) -> None:
        """Wake the loop now (an order was uploaded)."""
        self._wake.set()

    def pause_left(self) -> float:
        return max(0.0, self._paused_until - time.monotonic())

    def _pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    async def run(self) -> None:
        """Poll until cancelled; a failing round is logged and retried."""
        while True:
            try:
                released = await store.release_leases(self.db, self.owner)
                if released:
                    self.log.info("released %d leases of a previous run", released)
                break
            except Exception as exc:  # the database is not there yet
                self.log.warning("cannot release old leases yet: %s", exc)
                await asyncio.sleep(ERROR_PAUSE_S)
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("poll round failed; trying again")
                await asyncio.sleep(ERROR_PAUSE_S)

    async def round(self) -> int:
        """Wait out pauses, claim, ask, apply; returns how many orders were asked."""
        shared = await store.accrual_pause_s(self.db)
        if shared > 0:
            self._pause(shared)
        if self.pause_left() > 0:
            await asyncio.sleep(self.pause_left())
            return 0
        self._wake.clear()  # a nudge from now on wakes the idle wait below
        claimed = await store.claim_orders(self.db, self.owner, self.batch, self.lease_s)
        self._ask_until = time.monotonic() + self.lease_s * ASK_SHARE_OF_LEASE
        if not claimed:
            try:
                await asyncio.wait_for(self._wake.wait(), self.idle_s)
            except TimeoutError:
                pass
            return 0
        outcomes = await asyncio.gather(*(self._ask(n, a) for n, a in claimed))
        finals = [o for o in outcomes if isinstance(o, Final)]
        retries = [o for o in outcomes if isinstance(o, Retry)]
        # NOTE: finals first: a crash between the two statements leaves the retries
        # leased until lease_s, never an answered order unapplied.
        changed = await store.finish_orders(self.db, finals)
        await store.reschedule_orders(self.db, self.owner, retries)
        self.credited += changed
        return len(claimed)

    async def _ask(self, number: str, attempts: int) -> Final | Retry:
        async with self._slots:
            left = self.pause_left()
            if left > 0:  # a 429 arrived while this one waited for a slot
                return Retry(number, 0.0)  # due again; the pause gates the next claim
            if time.monotonic() > self._ask_until:  # the lease is running out
                return Retry(number, 0.0)
            self.requests += 1
            answer = await self.client.ask(number)
        return await self._outcome(number, attempts, answer)

    async def _outcome(self, number: str, attempts: int, answer: Answer) -> Final | Retry:
        if answer.kind != "failed":
            self._failed_rounds = 0
        if answer.kind == "final":
            assert answer.status is not None  # a final answer names PROCESSED or INVALID
            return Final(number, answer.status, answer.accrual_kop)
        if answer.kind == "pending":
            return Retry(number, _backoff(PENDING_FIRST_S, PENDING_MAX_S, attempts), "PROCESSING")
        if answer.kind == "unknown":
            return Retry(number, _backoff(UNKNOWN_FIRST_S, UNKNOWN_MAX_S, attempts))
        if answer.kind == "limited":
            first = self.pause_left() == 0
            self._pause(answer.retry_after_s)
            if first:
                self.log.warning(
                    "accrual system said 429: no requests for %.0f s", answer.retry_after_s
                )
            await store.pause_accrual(self.db, answer.retry_after_s)
            # NOTE: due at once: no poller claims before the pause ends, and the order
            # then goes first instead of waiting for its own clock after the pause.
            return Retry(number, 0.0)
        self._failed_rounds += 1
        breaker = _backoff(BREAKER_FIRST_S, BREAKER_MAX_S, self._failed_rounds - 1)
        if self.pause_left() < breaker:
            self.log.warning("accrual system failed (%s): pausing %.1f s", answer.reason, breaker)
        self._pause(breaker)
        return Retry(number, _backoff(FAILED_FIRST_S, FAILED_MAX_S, attempts))


class PollerActor(AsyncActor):
    """The poller as a supervised actor: it LISTENs for uploads on every instance.

    NOTE: no ZMQ socket for work. The NOTIFY an upload sends after its commit reaches
    this instance's poller as it reaches the others' (one wake-up path, not an ipc nudge
    as well): ``python -m bench.gophermart.upload_latency`` found upload -> credited no
    slower without the ipc nudge (figures in docs/gophermart.md). Its one ROUTER,
    ``Config.poller_endpoint``, answers its supervisor's liveness Pings only.
    """

    name = "gophermart.poller"

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.pool: LazyPool | None = None
        self.client: AccrualClient | None = None
        self.poller: Poller | None = None
        self.listener: Listener | None = None

    async def setup(self) -> None:
        cfg = self.config
        self.pool = LazyPool(
            cfg.database_uri, min_size=1, max_size=4, application_name="gophermart: poller"
        )
        self.client = AccrualClient(cfg.accrual_url, max_connections=cfg.poll_inflight)
        self.poller = Poller(
            self.pool,
            self.client,
            cfg.lease_owner,
            inflight=cfg.poll_inflight,
            lease_s=cfg.lease_s,
            idle_s=cfg.idle_ms / 1000,
            log=self.log,
        )
        poller = self.poller
        self.listener = Listener(
            cfg.database_uri,
            lambda _channel, _payload: poller.nudge(),
            on_connect=poller.nudge,
            name="gophermart: poller listen",
        )
        self.serve_liveness(cfg.poller_endpoint)
        await self.listener.listen_to([store.ORDERS_CHANNEL])
        self.spawn(self.listener.run(), "listener")
        self.spawn(self.poller.run(), "poll loop")
        self.log.info(
            "polling %s, %d in flight, woken by NOTIFY %s",
            cfg.accrual_url,
            cfg.poll_inflight,
            store.ORDERS_CHANNEL,
        )

    async def teardown(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        if self.client is not None:
            await self.client.close()
        if self.pool is not None:
            await self.pool.close()


def main() -> int:
    """`python -m actors.gophermart.poller`: run by the gophermart supervisor."""
    config = Config.from_env(os.environ, [])
    setup_logging("gophermart.poller")
    return run_async_actor(PollerActor(config), "gophermart: poller")


if __name__ == "__main__":
    raise SystemExit(main())
