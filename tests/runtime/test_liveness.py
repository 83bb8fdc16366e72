"""The supervisor's liveness probe against a real actor: a stopped child is killed and
restarted, with one line saying so; a child busy with long work (CPU) is left alone."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from typing import NamedTuple

import psutil

from actors.runtime import protocol
from actors.runtime.client import Client
from actors.runtime.liveness import HANG_AFTER_S, IDLE_S, START_GRACE_S
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
