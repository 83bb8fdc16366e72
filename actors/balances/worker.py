"""The worker actor: applies the queued tasks of the shards it holds a lease on.

The `balances` supervisor runs BALANCES_WORKERS of these (`python -m
actors.balances.worker <index>`). Each one:
- renews its shard leases every third of the lease (`store.claim_shards`), so the
  live workers of every instance split the 64 shards evenly, and a restarted worker
  (same owner name) gets its shards back at once;
- binds a ROUTER at an ipc endpoint private to its instance and recorded with its
  leases, where its instance's HTTP workers send a `Nudge` after committing a task;
- LISTENs on its shards' channels (`store.shard_channel`, actors.runtime.pg.listen),
  where HTTP workers of other instances, on any host, NOTIFY after committing one;
- passes on what was not meant for it any more: a nudge for a shard it does not hold
  (the nudger's map of owners is up to a second old), and, once it gave shards up,
  one NOTIFY on each, so their new holder looks at what was nudged here meanwhile;
- drains its shards on a nudge or notification, on a new lease, after its listening
  connection (re)connects, and every BALANCES_POLL_MS anyway:
  `store.apply_queued` in a loop, many tasks per transaction (group commit), until
  nothing is left.
kill -9 at any moment is safe: a batch is one transaction, and the restarted worker
finds every task it did not commit still queued.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

from actors.balances import store
from actors.balances.config import Config
from actors.balances.messages import Nudge
from actors.runtime.async_actor import AsyncActor, run_async_actor
from actors.runtime.logs import setup_logging
from actors.runtime.pg.listen import Listener
from actors.runtime.pg.notify import Notifier
from actors.runtime.pg.pool import LazyPool

__all__ = ["BalancesWorker", "main"]

DRAIN_PAUSE_S = 0.02
"""After a drain, wait this long before the next: under a stream of tasks each drain
then applies what 20 ms brought in one transaction, instead of the few tasks of each
nudge (an apply costs five round trips whatever its size). A lone task is applied at
once: the pause comes after its drain."""
ERROR_PAUSE_S = 1.0
"""After a failed batch (database away), wait this long before trying again."""
RELEASE_TIMEOUT_S = 1.0
"""At a clean stop, give the lease release this long (the lease expires anyway)."""
PARENT_CHECK_S = 1.0
"""How often a worker checks that its supervisor is alive (it stops when orphaned)."""


class BalancesWorker(AsyncActor):
    name = "balances-worker"

    def __init__(self, config: Config, index: int) -> None:
        super().__init__()
        self.config = config
        self.index = index
        self.owner = config.owner(index)
        self.endpoint = config.worker_endpoint(index)
        self.log = logging.getLogger(f"balances-worker[{index}]")
        self.pool: LazyPool | None = None
        self.shards: list[int] = []
        self.wake: asyncio.Event | None = None
        self.listener: Listener | None = None
        self.notifier: Notifier | None = None
        self.applied = 0

    async def setup(self) -> None:
        self.pool = LazyPool(
            self.config.database_uri,
            min_size=1,
            max_size=2,
            application_name=f"balances worker-{self.index}",
            # NOTE: a worker cut off mid-batch (its host's link down) leaves its backend
            # idle in transaction, holding the batch's user rows; PostgreSQL never hears
            # of it, so end such a transaction once the lease is up: the users' next
            # holder (another instance) can apply them then.
            server_settings={"idle_in_transaction_session_timeout": str(self.config.lease_ms)},
        )
        self.wake = asyncio.Event()
        self.notifier = Notifier(self.pool, f"balances worker-{self.index}")
        self.listener = Listener(
            self.config.database_uri,
            self._notified,
            on_connect=self.wake.set,
            name=f"balances worker-{self.index} listen",
        )
        self.spawn(self.listener.run(), "listener")
        self.parent = os.getppid()
        self.serve(self.endpoint)
        self.every(self.config.lease_ms / 3000, self.renew, "lease renewal")
        self.every(PARENT_CHECK_S, self.check_parent, "supervisor check")
        self.spawn(self.apply_loop(), "apply loop")
        self.log.info("worker %s serving %s", self.owner, self.endpoint)

    async def teardown(self) -> None:
        if self.listener is not None:
            await self.listener.close()
        if self.pool is None:
            return
        try:
            await asyncio.wait_for(store.release_shards(self.pool, self.owner), RELEASE_TIMEOUT_S)
        except Exception as exc:  # the lease expires by itself
            self.log.warning("could not release shards: %s", exc)
        await self.pool.close()

    async def check_parent(self) -> None:
        # NOTE: a supervisor killed with -9 cannot stop its children; an orphaned worker
        # would keep its leases (harmless, the row locks decide) and its ipc socket.
        if os.getppid() != self.parent:
            self.log.warning("supervisor (pid %d) is gone; stopping", self.parent)
            self.request_stop()

    def handle_balances_nudge(self, message: Nudge) -> None:
        assert self.wake is not None and self.notifier is not None  # made before serving
        for shard in message.shards:
            if shard in self.shards:
                self.wake.set()
            else:  # the shard moved on (maybe to another instance): wake its holder
                self.notifier.notify(store.shard_channel(shard))

    def _notified(self, channel: str, payload: str) -> None:
        assert self.wake is not None  # the listener starts in setup(), after it is made
        self.wake.set()

    async def renew(self) -> None:
        assert self.pool is not None and self.wake is not None, "renew() before setup()"
        assert self.listener is not None and self.notifier is not None, "renew() before setup()"
        shards = await store.claim_shards(
            self.pool, self.owner, self.endpoint, self.config.lease_ms / 1000
        )
        if shards != self.shards:
            gained = sorted(set(shards) - set(self.shards))
            lost = sorted(set(self.shards) - set(shards))
            self.log.info("holds %d shards (%d new)", len(shards), len(gained))
            self.shards = shards
            # NOTE: listen first, then look: a task committed in between is seen by
            # the drain or notified, never neither.
            await self.listener.listen_to(store.shard_channel(s) for s in shards)
            if gained:
                self.wake.set()
            # NOTE: a nudge that came while the claim was under way found the shard still
            # in self.shards and woke only this worker; its new holder, if it drained
            # already, is woken here (if not, its drain on gaining the shard sees it).
            for shard in lost:
                self.notifier.notify(store.shard_channel(shard))

    async def apply_loop(self) -> None:
        poll_s = self.config.poll_ms / 1000
        assert self.wake is not None, "apply_loop() before setup()"
        while True:
            try:
                await asyncio.wait_for(self.wake.wait(), poll_s)
            except TimeoutError:
                pass
            self.wake.clear()
            if not self.shards:
                continue
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.log.warning("apply failed, retrying: %s", exc)
                await asyncio.sleep(ERROR_PAUSE_S)
                self.wake.set()
                continue
            # NOTE: nudges that come meanwhile are kept (the event), not lost: the
            # next drain takes what they announced in one transaction.
            await asyncio.sleep(DRAIN_PAUSE_S)

    async def drain(self) -> None:
        """apply_queued until the owned shards hold nothing queued."""
        after = 0
        while True:
            started = time.monotonic()
            result = await store.apply_queued(
                self.pool,
                self.owner,
                after_user=after,
                max_users=self.config.batch_users,
                per_user=self.config.batch_per_user,
            )
            if result.tasks:
                self.applied += result.tasks
                self.log.debug(
                    "applied %d tasks of %d users in %.1f ms",
                    result.tasks,
                    result.users,
                    (time.monotonic() - started) * 1000,
                )
            if not result.more:
                return
            after = result.next_after


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m actors.balances.worker <index>", file=sys.stderr)
        return 2
    index = int(argv[0])
    config = Config.from_env(os.environ, [])
    setup_logging(f"balances-worker[{index}]")
    return run_async_actor(BalancesWorker(config, index), f"balances: worker {index}")


if __name__ == "__main__":
    sys.exit(main())
