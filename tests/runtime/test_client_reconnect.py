"""AsyncClient against a real actor process that dies with requests in flight.

The actor answers Ping (every serve loop does) and never answers ``hold``: a hold is a
request the actor took and may have acted on. Killed with SIGKILL, the actor's requests
are answered at once, not at the client's timeout: a hold with UNKNOWN_OUTCOME, a Ping
marked ``resend`` is asked again of the restarted actor and answered by it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
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
            await asyncio.get_running_loop().run_in_executor(
                None, _holder, tmp_path / "again", endpoint
            )
            return await asyncio.wait_for(asked, TIMEOUT_S)
        finally:
            client.close()

    (tmp_path / "again").mkdir()
    assert asyncio.run(scenario()) is None
