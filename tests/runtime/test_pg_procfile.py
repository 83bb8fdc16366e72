"""The Procfile's PostgreSQL process (``python -m actors.runtime.pg.foreground``) at a stop:
it lets its clients finish and leave before the fast shutdown, for a bounded time, so
the services that honcho stops at the same moment never meet a server going down."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

from actors.runtime.pg.installation import psql_binary
from actors.runtime.pg.server import CLIENTS_WAIT_S, PostgresServer
from actors.runtime.testing import Proc, free_port, wait_until

CLIENT_QUERY_S = 1.0


def _wrapper(tmp_path) -> tuple[Proc, PostgresServer]:
    port = free_port()
    data_dir = tmp_path / "pg"
    argv = [sys.executable, "-m", "actors.runtime.pg.foreground", "--data-dir", str(data_dir)]
    proc = Proc("pgserver", [*argv, "--port", str(port)], dict(os.environ), tmp_path)
    proc.start()
    proc.wait_output(f"postgres ready on 127.0.0.1:{port}", 120)
    return proc, PostgresServer(data_dir, port)


def _client(server: PostgresServer, seconds: float) -> subprocess.Popen[str]:
    """psql running one query of ``seconds`` (then it disconnects)."""
    argv = [psql_binary(server.bin_dir), "-X", "-At", "-d", server.dsn(), "-c"]
    return subprocess.Popen(
        [*argv, f"SELECT pg_sleep({seconds}), 'finished'"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _connected(proc: Proc) -> bool:
    titles = []
    for child in proc.descendants():
        try:
            titles.append(" ".join(child.cmdline()))
        except psutil.Error:
            continue
    return any("pg_sleep" in t or "SELECT" in t for t in titles)


def test_a_stop_waits_for_the_clients_to_finish_and_leave(tmp_path):
    proc, server = _wrapper(tmp_path)
    client = _client(server, CLIENT_QUERY_S)
    wait_until(lambda: _connected(proc), 30, "the client's query to run")
    proc.started().send_signal(signal.SIGTERM)
    out, _ = client.communicate(timeout=30)
    assert client.returncode == 0 and "finished" in out, out  # not cut off by the shutdown
    assert proc.started().wait(timeout=30) == 0
    assert "postgres stopped (after its clients left" in proc.output()


def test_a_client_that_stays_delays_the_stop_only_for_a_bounded_time(tmp_path):
    proc, server = _wrapper(tmp_path)
    client = _client(server, 60)
    try:
        wait_until(lambda: _connected(proc), 30, "the client's query to run")
        stopping = time.monotonic()
        proc.started().send_signal(signal.SIGTERM)
        assert proc.started().wait(timeout=30) == 0
        took = time.monotonic() - stopping
        assert CLIENTS_WAIT_S <= took < CLIENTS_WAIT_S + 5, took
        assert "postgres stopped (1 clients still connected after" in proc.output()
    finally:
        client.kill()
        client.wait(timeout=10)
