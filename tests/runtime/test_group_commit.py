"""actors.runtime.pg.group_commit: concurrent submits share flushes, each hears its own
outcome; the flush here is a plain function that records its batches."""

from __future__ import annotations

import asyncio

import pytest

from actors.runtime.pg.group_commit import GroupCommit


class Recorder:
    """A flush that answers each item doubled (an exception for negatives), after a
    round trip's worth of waiting; raises for a batch holding "boom"."""

    def __init__(self) -> None:
        self.batches: list[list[object]] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def flush(self, items: list[object]) -> list[object]:
        self.batches.append(items)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.01)
        finally:
            self.in_flight -= 1
        if "boom" in items:
            raise ConnectionError("database went away")
        return [ValueError(i) if isinstance(i, int) and i < 0 else i * 2 for i in items]


def test_concurrent_submits_share_flushes_and_each_gets_its_own_answer():
    recorder = Recorder()
    group: GroupCommit[object, object] = GroupCommit(recorder.flush)

    async def run():
        alone = asyncio.create_task(group.submit(0))
        await asyncio.sleep(0.002)  # its flush is under way: the next ones wait, together
        return await asyncio.gather(alone, *(group.submit(i) for i in range(1, 50)))

    assert asyncio.run(run()) == [i * 2 for i in range(50)]
    assert recorder.batches == [[0], list(range(1, 50))]
    assert group.flushes == 2


def test_an_items_error_is_its_own_and_a_flush_error_is_its_batchs():
    recorder = Recorder()
    group: GroupCommit[object, object] = GroupCommit(recorder.flush)

    async def run():
        first = await asyncio.gather(group.submit(1), group.submit(-1), return_exceptions=True)
        second = await asyncio.gather(group.submit(2), group.submit("boom"), return_exceptions=True)
        third = await group.submit(3)  # a failed batch leaves the next one working
        return first, second, third

    first, second, third = asyncio.run(run())
    assert first[0] == 2 and isinstance(first[1], ValueError)
    assert all(isinstance(outcome, ConnectionError) for outcome in second)
    assert third == 6


def test_at_most_max_flushes_run_at_once_and_batches_are_capped():
    recorder = Recorder()
    group: GroupCommit[object, object] = GroupCommit(recorder.flush, max_batch=7, max_flushes=2)

    async def run():
        return await asyncio.gather(*(group.submit(i) for i in range(40)))

    assert asyncio.run(run()) == [i * 2 for i in range(40)]
    assert recorder.most_in_flight == 2
    assert max(len(batch) for batch in recorder.batches) == 7


def test_a_cancelled_caller_does_not_stop_the_others():
    recorder = Recorder()
    group: GroupCommit[object, object] = GroupCommit(recorder.flush)

    async def run():
        leaving = asyncio.create_task(group.submit(1))
        staying = asyncio.create_task(group.submit(2))
        await asyncio.sleep(0)  # both submitted, the flush under way
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return await staying

    assert asyncio.run(run()) == 4


def test_it_works_again_in_a_new_event_loop():
    """An app is used from one loop after another in tests: a runner of a closed loop
    must not make later submits wait for ever."""
    recorder = Recorder()
    group: GroupCommit[object, object] = GroupCommit(recorder.flush)
    assert asyncio.run(group.submit(1)) == 2

    async def interrupted():
        asyncio.get_running_loop().create_task(group.submit(2))
        await asyncio.sleep(0)

    asyncio.run(interrupted())  # the loop closes while a flush is pending

    async def later():
        async with asyncio.timeout(5):
            return await group.submit(3)

    assert asyncio.run(later()) == 6
