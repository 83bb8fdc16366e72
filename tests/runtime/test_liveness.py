"""The supervisor's liveness probe against a real actor: a stopped child is killed and
restarted, with one line saying so; a child busy with long work (CPU) is left alone.

The probe asks each new process once, and is answered: each round starts a new actor
process on the same ipc endpoint (the last one was killed with SIGKILL, its socket file
left behind, as after a crash) and restarts the probe at once, as the supervisor does;
the probe's one Ping leaves as soon as ZMQ takes it, a moment after the actor bound,
and must be answered with no second asking, by both serve loops (``Actor``'s zmq poll,
``AsyncActor``'s asyncio).
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from typing import NamedTuple

import psutil
import pytest

from actors.runtime import protocol
from actors.runtime.client import Client
from actors.runtime.liveness import (
    HANG_AFTER_S,
    IDLE_S,
    PING_EVERY_S,
    START_GRACE_S,
    LivenessProbe,
)
from actors.runtime.protocol import tagged
from actors.runtime.testing import ROOT, Proc, wait_until

SCRIPT = textwrap.dedent("""
    import sys
    from actors.runtime.liveness import LivenessProbe
    from actors.runtime.logs import setup_logging
    from actors.runtime.supervisor import Child, Supervisor
    setup_logging("test-liveness")
    endpoint = sys.argv[1]
    child = Child("worker", [sys.executable, "-c", sys.argv[2], endpoint], {},
                  liveness=LivenessProbe(endpoint))
    sys.exit(Supervisor("test-liveness", [child]).run())
""")

WORKER = textwrap.dedent("""
    import sys, time
    from typing import NamedTuple
    import zmq
    from actors.runtime.base import Actor, run_actor
    from actors.runtime.protocol import Ok, tagged

    @tagged("test_busy")
    class Busy(NamedTuple):
        ms: int

    class Worker(Actor):
        name = "worker"

        def setup(self):
            sock = self.server_socket(zmq.ROUTER)
            self.serve(sock)
            sock.bind(sys.argv[1])
            print("worker listening", flush=True)

        def handle_test_busy(self, ident, request_id, message):
            until = time.monotonic() + message.ms / 1000
            while time.monotonic() < until:  # long legitimate work: the loop is not turning
                pass
            self.reply(ident, request_id, Ok(message.ms))

    sys.exit(run_actor(Worker(), "test-liveness worker"))
""")

ASYNC_WORKER = textwrap.dedent("""
    import sys
    from actors.runtime.async_actor import AsyncActor, run_async_actor

    class Worker(AsyncActor):
        name = "worker"

        async def setup(self):
            self.serve(sys.argv[1])
            print("worker listening", flush=True)

    sys.exit(run_async_actor(Worker(), "test-liveness async worker"))
""")

ROUNDS = 10
ANSWER_S = 10.0
"""Far longer than a start takes: a Ping lost on the way is never answered."""
CHECK_EVERY_S = 0.01

BUSY_S = HANG_AFTER_S + 2 * IDLE_S
"""Longer than the probe's silence bound: only its CPU use keeps the worker alive."""


@tagged("test_busy")
class Busy(NamedTuple):
    ms: int
    """Milliseconds of CPU work before the answer (an int: the protocol tests sample every
    registered message's fields by type)."""


protocol.register(Busy)


def _supervised_worker(tmp_path) -> tuple[Proc, str]:
    endpoint = f"ipc://{tmp_path}/worker.sock"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    proc = Proc("liveness", [sys.executable, "-c", SCRIPT, endpoint, WORKER], env, tmp_path)
    proc.start()
    proc.wait_output("worker listening", 30)
    return proc, endpoint


def _worker(proc: Proc) -> psutil.Process:
    (worker,) = proc.descendants()
    return worker


def test_a_stopped_child_is_killed_and_restarted_in_one_line(tmp_path):
    proc, _ = _supervised_worker(tmp_path)
    try:
        wait_until(lambda: len(proc.descendants()) == 1, 10, "the worker")
        stopped = _worker(proc)
        stopped.send_signal(signal.SIGSTOP)
        said = f"worker (pid {stopped.pid}) answered no ping for"
        proc.wait_output(said, HANG_AFTER_S + IDLE_S + START_GRACE_S)
        wait_until(lambda: proc.output().count("worker listening") == 2, 30, "a new worker")
        assert proc.output().count(said) == 1
        assert not psutil.pid_exists(stopped.pid)
    finally:
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_a_child_busy_past_the_silence_bound_is_left_alone(tmp_path):
    proc, endpoint = _supervised_worker(tmp_path)
    try:
        wait_until(lambda: len(proc.descendants()) == 1, 10, "the worker")
        worker = _worker(proc)
        with Client(endpoint, timeout_s=BUSY_S + 30) as client:
            busy_ms = int(BUSY_S * 1000)
            assert client.call(Busy(busy_ms)) == busy_ms
            assert client.call(protocol.Ping()) is None
        assert _worker(proc).pid == worker.pid
        assert "answered no ping" not in proc.output()
    finally:
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def _worker_alone(tmp_path, script: str, endpoint: str, name: str) -> Proc:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return Proc(name, [sys.executable, "-c", script, endpoint], env, tmp_path)


def _wait_answered(probe: LivenessProbe, worker: Proc, what: str) -> None:
    """Check the probe as the supervisor does (more often) until the worker answered."""
    pid = worker.started().pid
    wait_until(lambda: probe.check(pid) and probe.answered, ANSWER_S, what, CHECK_EVERY_S)


@pytest.mark.parametrize("script", [WORKER, ASYNC_WORKER], ids=["Actor", "AsyncActor"])
def test_every_new_process_answers_the_probes_one_ping(tmp_path, script):
    endpoint = f"ipc://{tmp_path}/worker.sock"
    probe = LivenessProbe(endpoint)
    try:
        for round_ in range(ROUNDS):
            worker = _worker_alone(tmp_path, script, endpoint, f"worker{round_}")
            worker.start()
            probe.restart()
            try:
                _wait_answered(probe, worker, f"round {round_}: the answer to the one Ping")
            finally:
                worker.kill9()
    finally:
        probe.close()


def test_the_probe_asks_a_new_process_at_once(tmp_path):
    """A child is judged hung only after its first answer (before it, it may be starting):
    that answer comes as soon as the child's loop turns, not a Ping interval later."""
    endpoint = f"ipc://{tmp_path}/worker.sock"
    worker = _worker_alone(tmp_path, WORKER, endpoint, "worker")
    worker.start()
    probe = LivenessProbe(endpoint)
    try:
        worker.wait_output("worker listening", 30)
        probe.restart()
        asked = time.monotonic()
        _wait_answered(probe, worker, "the answer")
        assert time.monotonic() - asked < PING_EVERY_S
    finally:
        probe.close()
        worker.kill9()
