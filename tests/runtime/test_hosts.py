"""actors.runtime.hosts: a /24 for network namespaces is held by one process at a time.

The claimants are real processes started at once, so their picks race as two test runs'
would; each prints the subnet it holds and keeps it until SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import sys

import pytest

from actors.runtime.hosts import PREFIX, claim_subnet
from actors.runtime.testing import Proc, wait_until
from tests.fixtures_procs import stopped_cleanly

CLAIMANTS = 4
CLAIM_TIMEOUT_S = 20.0

CLAIMANT = """
import signal, sys
from pathlib import Path
from actors.runtime.hosts import claim_subnet
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
claim = claim_subnet(lock_dir=Path(sys.argv[1]))
print(f"claimed {claim.subnet}", flush=True)
signal.pause()
"""
"""Claims the first free subnet (locks under argv[1]), says which, holds it until SIGTERM."""

pytestmark = pytest.mark.skipif(
    shutil.which("ip") is None, reason="claim_subnet reads addresses with ip (iproute2)"
)


def _claimant(name: str, lock_dir, log_dir) -> Proc:
    return Proc(name, [sys.executable, "-c", CLAIMANT, str(lock_dir)], dict(os.environ), log_dir)


def _claimed(proc: Proc) -> int:
    """The subnet proc says it holds (waits for the line)."""

    def said() -> int | None:
        if not proc.running():
            raise proc.fail("exited before claiming a subnet")
        lines = [line for line in proc.output().splitlines() if line.startswith("claimed ")]
        return int(lines[0].split()[1]) if lines else None

    subnet: int = wait_until(said, CLAIM_TIMEOUT_S, f"{proc.name} to claim a subnet")
    return subnet


def test_claims_racing_in_several_processes_each_get_their_own_subnet(tmp_path):
    locks = tmp_path / "locks"
    with stopped_cleanly(tmp_path / "logs") as group:
        claimants = [
            group.add(_claimant(f"claimant{i}", locks, group.dir)) for i in range(CLAIMANTS)
        ]
        for claimant in claimants:
            claimant.start()
        held = [_claimed(claimant) for claimant in claimants]
        assert len(set(held)) == CLAIMANTS, held

        mine = claim_subnet(lock_dir=locks)
        assert mine.subnet not in held
        with pytest.raises(RuntimeError, match=rf"{PREFIX}\.{held[0]}\.0/24 is held"):
            claim_subnet(held[0], lock_dir=locks)
        mine.release()
        claim_subnet(mine.subnet, lock_dir=locks).release()  # free again once released


def test_a_killed_claimants_subnet_is_free_again(tmp_path):
    locks = tmp_path / "locks"
    with stopped_cleanly(tmp_path / "logs") as group:
        claimant = group.add(_claimant("claimant", locks, group.dir))
        claimant.start()
        subnet = _claimed(claimant)
        with pytest.raises(RuntimeError, match="is held by another process"):
            claim_subnet(subnet, lock_dir=locks)
        claimant.kill9()
    claim_subnet(subnet, lock_dir=locks).release()


def test_namespaces_hold_their_subnet_for_their_life(network_hosts):
    hosts = network_hosts(1, "no namespaces to hold a subnet")
    subnet = int(hosts.prefix.rsplit(".", 1)[1])
    with pytest.raises(RuntimeError, match="is held by another process"):
        claim_subnet(subnet)
    other = claim_subnet()
    try:
        assert other.subnet != subnet
    finally:
        other.release()
