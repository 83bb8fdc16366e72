"""The runtime's supervisor as a real process: restarts, giving up, a clean stop."""

from __future__ import annotations

import os
import re
import signal
import sys
import textwrap

import psutil

from actors.runtime.testing import ROOT, Proc, free_port, port_open, wait_until

SCRIPT = textwrap.dedent("""
    import logging, sys, time
    from actors.runtime.logs import setup_logging
    from actors.runtime.ready import ReadyAnnouncer
    from actors.runtime.supervisor import Child, Supervisor
    setup_logging("test-supervisor")
    py = sys.executable
    port = sys.argv[2] if len(sys.argv) > 2 else "0"
    slow_server = (  # answers HTTP a second after it starts
        f"import time, runpy, sys; time.sleep(1); sys.argv = ['x', '{port}', '--bind',"
        f" '127.0.0.1']; runpy.run_module('http.server', run_name='__main__')"
    )
    children = {
        "crashing": [Child("crashing", [py, "-c", "raise SystemExit(3)"], {})],
        "steady": [Child("steady", [py, "-c", "import time; time.sleep(600)"], {}),
                   Child("flaky", [py, "-c", "import time; time.sleep(0.3); raise SystemExit(4)"],
                         {}, quick_death_s=0.1)],
        "ready": [Child("web", [py, "-c", slow_server], {})],
        "never": [Child("steady", [py, "-c", "import time; time.sleep(600)"], {})],
        "after_ready": [
            Child("web", [py, "-c", slow_server], {}),
            Child("late", [py, "-c", "print('late child up', flush=True); import time; "
                           "time.sleep(600)"], {}, start_when=lambda: ready.done),
        ],
    }[sys.argv[1]]
    ready = ReadyAnnouncer(
        "demo", [f"http://127.0.0.1:{port}"], logging.getLogger("test-supervisor"), deadline_s=1
    )
    sys.exit(Supervisor("test-supervisor", children, on_tick=ready).run())
""")


def _supervisor(tmp_path, mode: str, port: int = 0) -> Proc:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-c", SCRIPT, mode, str(port)]
    proc = Proc(f"supervisor-{mode}", argv, env, tmp_path)
    proc.start()
    return proc


def test_a_child_that_keeps_dying_at_start_makes_the_supervisor_give_up(tmp_path):
    proc = _supervisor(tmp_path, "crashing")
    wait_until(lambda: not proc.running(), 30, "the supervisor to give up")
    assert proc.process.returncode == 1
    out = proc.output()
    assert out.count("restarting crashing") == 4
    assert "exited with status 3 5 times right after starting; giving up" in out
    delays = re.findall(
        r"crashing \(pid \d+\) exited with status 3 after [\d.]+ s; restarting in ([\d.]+) s", out
    )
    assert delays == ["0.5", "1.0", "2.0", "4.0"], "backoff grows only on repeated quick deaths"


def test_a_child_that_lives_past_its_quick_death_time_is_restarted_for_ever(tmp_path):
    proc = _supervisor(tmp_path, "steady")
    try:
        wait_until(
            lambda: proc.output().count("restarting flaky") >= 6,
            30,
            "six restarts of the flaky child",
        )
        assert proc.running()
        assert "giving up" not in proc.output()
        # it ran past its quick-death time each time: restarted at once, never backed off
        delays = set(
            re.findall(r"flaky \(pid \d+\) exited .* restarting in ([\d.]+) s", proc.output())
        )
        assert delays == {"0.0"}
    finally:
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0
    assert "stopped" in proc.output()


def test_children_stop_when_the_supervisor_is_killed_with_sigkill(tmp_path):
    proc = _supervisor(tmp_path, "steady")
    wait_until(lambda: len(proc.descendants()) >= 2, 30, "the children to start")
    children = proc.descendants()
    proc.process.send_signal(signal.SIGKILL)
    proc.process.wait(timeout=10)
    alive = psutil.wait_procs(children, timeout=10)[1]
    assert not alive, f"children outlived their supervisor: {alive}"


def test_the_ready_line_comes_once_when_the_port_answers_http(tmp_path):
    port = free_port()
    proc = _supervisor(tmp_path, "ready", port)
    try:
        said = f"demo is ready on http://127.0.0.1:{port}"
        proc.wait_output(said, 30)
        assert port_open(port)
        wait_until(lambda: proc.output().count("GET /healthz") >= 1, 10, "the probe's request")
        assert proc.output().count(said) == 1
    finally:
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_no_ready_line_while_nothing_answers_only_a_warning_past_the_deadline(tmp_path):
    proc = _supervisor(tmp_path, "never", free_port())
    try:
        proc.wait_output("demo is not ready on http://127.0.0.1:", 30)
        assert "is ready on" not in proc.output()
    finally:
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0


def test_a_child_with_start_when_starts_only_once_it_holds(tmp_path):
    port = free_port()
    proc = _supervisor(tmp_path, "after_ready", port)
    try:
        proc.wait_output("late child up", 30)
        out = proc.output()
        said = out.index(f"demo is ready on http://127.0.0.1:{port}")
        assert said < out.index("starting late") < out.index("late child up")
        assert out.count("starting late") == 1
    finally:
        proc.process.send_signal(signal.SIGTERM)
        assert proc.process.wait(timeout=10) == 0
