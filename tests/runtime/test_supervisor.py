"""The runtime's supervisor as a real process: restarts, giving up, a clean stop."""

from __future__ import annotations

import os
import signal
import sys
import textwrap

import psutil

from actors.runtime.testing import ROOT, Proc, wait_until

SCRIPT = textwrap.dedent("""
    import sys, time
    from actors.runtime.logs import setup_logging
    from actors.runtime.supervisor import Child, Supervisor
    setup_logging("test-supervisor")
    py = sys.executable
    children = {
        "crashing": [Child("crashing", [py, "-c", "raise SystemExit(3)"], {})],
        "steady": [Child("steady", [py, "-c", "import time; time.sleep(600)"], {}),
                   Child("flaky", [py, "-c", "import time; time.sleep(0.3); raise SystemExit(4)"],
                         {}, quick_death_s=0.1)],
    }[sys.argv[1]]
    sys.exit(Supervisor("test-supervisor", children).run())
""")


def _supervisor(tmp_path, mode: str) -> Proc:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = Proc(f"supervisor-{mode}", [sys.executable, "-c", SCRIPT, mode], env, tmp_path)
    proc.start()
    return proc


def test_a_child_that_keeps_dying_at_start_makes_the_supervisor_give_up(tmp_path):
    proc = _supervisor(tmp_path, "crashing")
    wait_until(lambda: not proc.running(), 30, "the supervisor to give up")
    assert proc.process.returncode == 1
    out = proc.output()
    assert out.count("restarting crashing") == 4
    assert "exited with status 3 5 times right after starting; giving up" in out


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
