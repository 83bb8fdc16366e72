"""The reaper: turns expired memberships into history rows stamped with their expiry time.

It sleeps until the next expiry (read from the database), at most MAX_SLEEP_S, or until an
HTTP worker nudges it after adding an expiry. Reads never depend on it (they filter by
time); it only moves expired rows to history. With several instances every reaper runs:
`store.reap_expired` skips rows another transaction holds, so no removal is written twice;
after a restart the first round catches up with everything that expired meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import sys

from actors.runtime.async_actor import AsyncActor, run_async_actor
from actors.runtime.logs import setup_logging
from actors.runtime.pg.pool import LazyPool
from actors.segments import store
from actors.segments.config import Config
from actors.segments.messages import Nudge

__all__ = ["MAX_SLEEP_S", "Reaper", "main"]

MAX_SLEEP_S = 1.0  # a lost nudge or another instance's expiry shows in history within this
MIN_SLEEP_S = 0.005  # timestamps have microseconds; do not spin on an expiry a hair away
ERROR_PAUSE_S = 1.0  # after a failed round (database down), before the next


class Reaper(AsyncActor):
    """Moves expired memberships to history; `handle_segments_reaper_nudge` wakes it."""

    name = "segments.reaper"

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        self.pool: LazyPool | None = None
        self._wake: asyncio.Event | None = None
        self.reaped = 0

    async def setup(self) -> None:
        self.pool = LazyPool(
            self.config.database_uri, min_size=1, max_size=2, application_name="segments: reaper"
        )
        self._wake = asyncio.Event()
        self.serve(self.config.reaper_endpoint)
        self.spawn(self._loop(), "reap")
        self.log.info("reaping expired memberships (nudges on %s)", self.config.reaper_endpoint)

    async def teardown(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    def handle_segments_reaper_nudge(self, message: Nudge) -> None:
        assert self._wake is not None  # serving starts in setup(), after it is made
        self._wake.set()

    async def _loop(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()  # a nudge during the round makes the next one start at once
            try:
                delay = await self.reap_round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be down: retry
                self.log.warning("reaping failed, retrying in %g s: %s", ERROR_PAUSE_S, exc)
                delay = ERROR_PAUSE_S
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
            except TimeoutError:
                pass

    async def reap_round(self) -> float:
        """Reap everything due; return how long to sleep before the next round."""
        assert self.pool is not None, "reap_round() before setup()"
        while (moved := await store.reap_expired(self.pool)) == store.REAP_BATCH_ROWS:
            self.reaped += moved
        self.reaped += moved
        if moved:
            self.log.debug("moved %d expired memberships to history", moved)
        seconds = await store.seconds_to_next_expiry(self.pool)
        if seconds is None:
            return MAX_SLEEP_S
        return min(MAX_SLEEP_S, max(MIN_SLEEP_S, seconds))


def main() -> int:
    """Run the reaper of the instance the environment describes (a supervisor child)."""
    config = Config.from_env(os.environ, [])
    setup_logging("segments.reaper")
    return run_async_actor(Reaper(config), "segments: reaper")


if __name__ == "__main__":
    sys.exit(main())
