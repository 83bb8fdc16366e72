"""AsyncClient against a real actor process that dies with requests in flight.

The actor answers Ping (every serve loop does) and never answers ``hold``: a hold is a
request the actor took and may have acted on. Killed with SIGKILL, the actor's requests
are answered at once, not at the client's timeout: a hold with UNKNOWN_OUTCOME, a Ping
marked ``resend`` is asked again of the restarted actor and answered by it, even when
the client's event loop reacts to the lost connection before ZMQ's own thread has
dropped the connection's pipe (a race this module makes happen every time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import NamedTuple

import pytest

from actors.runtime import protocol
from actors.runtime.client import AsyncClient, RemoteError
from actors.runtime.protocol import ErrorCode, Ping, tagged
from actors.runtime.testing import ROOT, Proc

TIMEOUT_S = 30.0
"""The client's timeout: far longer than any answer the tests wait for."""
PROMPT_S = 2.0
"""What "at once" means here, with room for a busy machine."""
ANSWER_S = 10.0
"""How long the restarted actor may take to answer a resent read: a read lost on the
way waits for this, and the test fails."""

ACTOR = textwrap.dedent("""
    import sys
    from typing import NamedTuple
    import zmq
    from actors.runtime.base import Actor, run_actor
    from actors.runtime.protocol import tagged

    @tagged("test_hold")
    class Hold(NamedTuple):
        pass

    class Holder(Actor):
        name = "holder"

        def setup(self):
            sock = self.server_socket(zmq.ROUTER)
            self.serve(sock)
            sock.bind(sys.argv[1])
            print("holder listening", flush=True)

        def handle_test_hold(self, ident, request_id, message):
            pass  # taken, never answered

    sys.exit(run_actor(Holder(), "holder"))
""")


@tagged("test_hold")
class Hold(NamedTuple):
    pass


protocol.register(Hold)


def _holder(tmp_path, endpoint: str) -> Proc:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = Proc("holder", [sys.executable, "-c", ACTOR, endpoint], env, tmp_path)
    proc.start()
    proc.wait_output("holder listening", 20)
    return proc


@pytest.fixture
def endpoint(tmp_path) -> str:
    return f"ipc://{tmp_path}/holder.sock"


def test_a_request_the_dead_actor_took_is_answered_unknown_outcome_at_once(tmp_path, endpoint):
    holder = _holder(tmp_path, endpoint)

    async def scenario() -> tuple[RemoteError, float]:
        client = AsyncClient(endpoint, TIMEOUT_S, peer="holder")
        try:
            assert await client.call(Ping()) is None
            held = asyncio.ensure_future(client.call(Hold()))
            while not client._sent:  # noqa: SLF001 - on the wire, not just queued
                await asyncio.sleep(0.01)
            killed_at = time.monotonic()
            assert holder.process is not None
            holder.process.send_signal(signal.SIGKILL)
            with pytest.raises(RemoteError) as caught:
                await asyncio.wait_for(held, TIMEOUT_S)
            return caught.value, time.monotonic() - killed_at
        finally:
            client.close()

    error, seconds = asyncio.run(scenario())
    assert error.code == ErrorCode.UNKNOWN_OUTCOME
    assert "went away before answering" in error.reason
    assert seconds < PROMPT_S, f"answered {seconds:.2f} s after the kill"


def test_a_read_marked_resend_is_answered_by_the_restarted_actor(tmp_path, endpoint):
    holder = _holder(tmp_path, endpoint)
    restarted: list[Proc] = []

    async def scenario() -> object:
        client = AsyncClient(endpoint, TIMEOUT_S, peer="holder")
        try:
            assert await client.call(Ping()) is None
            assert holder.process is not None
            holder.process.send_signal(signal.SIGSTOP)  # takes the Ping, cannot answer
            asked = asyncio.ensure_future(client.call(Ping(), resend=True))
            while not client._sent:  # noqa: SLF001 - on the wire, not just queued
                await asyncio.sleep(0.01)
            holder.process.send_signal(signal.SIGKILL)
            await asyncio.get_running_loop().run_in_executor(None, holder.process.wait)
            restarted.append(
                await asyncio.get_running_loop().run_in_executor(
                    None, _holder, tmp_path / "again", endpoint
                )
            )
            return await asyncio.wait_for(asked, TIMEOUT_S)
        finally:
            client.close()

    (tmp_path / "again").mkdir()
    try:
        assert asyncio.run(scenario()) is None
    finally:
        for proc in restarted:
            proc.stop()


def _threads() -> set[int]:
    """This process's threads (kernel thread ids)."""
    return {int(tid) for tid in os.listdir("/proc/self/task")}


@contextlib.contextmanager
def _event_loop_before_zmq(zmq_threads: set[int]) -> Iterator[None]:
    """Run this thread's event loop before ZMQ's threads whenever both could run: they
    share one CPU and ZMQ's threads are SCHED_IDLE. When the actor dies, ZMQ's I/O thread
    reports EVENT_DISCONNECTED, which wakes the loop, and only goes on (to drop the lost
    connection's pipe) once the loop waits again: what a busy 2-core machine does now
    and then, made to happen every time."""
    loop_thread = threading.get_native_id()
    cpus = os.sched_getaffinity(loop_thread)
    try:
        for tid in (loop_thread, *zmq_threads):
            os.sched_setaffinity(tid, {min(cpus)})
        for tid in zmq_threads:
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        yield
    finally:
        for tid in zmq_threads:
            with contextlib.suppress(ProcessLookupError):  # gone with its context
                os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
                os.sched_setaffinity(tid, cpus)
        os.sched_setaffinity(loop_thread, cpus)


def test_a_read_resent_as_the_connection_is_lost_reaches_the_next_actor(tmp_path, endpoint):
    holders = [_holder(tmp_path, endpoint)]
    (tmp_path / "next").mkdir()

    async def scenario() -> object:
        loop = asyncio.get_running_loop()
        client = AsyncClient(endpoint, TIMEOUT_S, peer="holder")
        before = _threads()
        try:
            assert await client.call(Ping()) is None
            zmq_threads = _threads() - before
            dying = holders[0].started()
            dying.send_signal(signal.SIGSTOP)  # takes the Ping, cannot answer
            asked = asyncio.ensure_future(client.call(Ping(), resend=True))
            while not client._sent:  # noqa: SLF001 - on the wire, not just queued
                await asyncio.sleep(0.01)
            # The next process binds the endpoint now: the client reconnects to it at once.
            holders.append(await loop.run_in_executor(None, _holder, tmp_path / "next", endpoint))
            with _event_loop_before_zmq(zmq_threads):
                dying.send_signal(signal.SIGKILL)
                return await asyncio.wait_for(asked, ANSWER_S)
        finally:
            client.close()

    try:
        assert asyncio.run(scenario()) is None
    finally:
        for holder in holders:
            holder.stop()
