"""Installs what the benchmarks need and reports what is usable.

Debian packages: wrk (the HTTP load generator, always needed), and for the
peers golang-go, golang-github-nats-io-go-nats-dev (to build the two Go
servers) and nats-server (JetStream, also measurement 5). Pip: nats-py in the
venv (the JetStream client of measurement 5). Missing ones are installed with
``apt-get update && apt-get install -y`` and ``pip install``; a failure only
turns the measurements that need them off, with the reason.

Run alone: ``.venv/bin/python bench/deps.py [--no-peers]``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

WRK_PACKAGES = ["wrk"]
PEER_PACKAGES = ["golang-go", "nats-server", "golang-github-nats-io-go-nats-dev"]
APT_TIMEOUT_S = 900
PIP_TIMEOUT_S = 300


@dataclass
class Deps:
    wrk: bool = False
    peers: bool = False  # Go toolchain + nats.go + nats-server: peers.sh can run
    nats_server: bool = False
    nats_py: bool = False
    notes: list[str] = field(default_factory=list)


def _installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], check=False, capture_output=True, text=True
    )
    return result.returncode == 0 and "install ok installed" in result.stdout


def _apt_install(packages: list[str], notes: list[str]) -> None:
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return
    if os.geteuid() != 0:
        notes.append(f"not root: cannot apt-get install {' '.join(missing)}")
        return
    print(f"[deps] apt-get install {' '.join(missing)} ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
            result = subprocess.run(
                argv, check=False, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S
            )
            if result.returncode != 0:
                tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                notes.append(f"{' '.join(argv[:2])} failed: {' | '.join(tail)}")
                return
    except (OSError, subprocess.TimeoutExpired) as exc:
        notes.append(f"apt-get failed: {exc}")


def _pip_install(module: str, package: str, notes: list[str]) -> bool:
    if importlib.util.find_spec(module) is not None:
        return True
    print(f"[deps] pip install {package} ...", flush=True)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", package],
            check=False,
            capture_output=True,
            text=True,
            timeout=PIP_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        notes.append(f"pip install {package} failed: {exc}")
        return False
    if result.returncode != 0:
        notes.append(f"pip install {package} failed: {result.stderr.strip()[-300:]}")
        return False
    importlib.invalidate_caches()
    return importlib.util.find_spec(module) is not None


def ensure(peers: bool = True) -> Deps:
    """Install what is missing; say what can run."""
    deps = Deps()
    _apt_install(WRK_PACKAGES + (PEER_PACKAGES if peers else []), deps.notes)
    deps.wrk = shutil.which("wrk") is not None
    if not deps.wrk:
        deps.notes.append("wrk is not installed: HTTP measurements are skipped")
    if peers:
        deps.nats_server = shutil.which("nats-server") is not None
        deps.peers = (
            deps.nats_server
            and shutil.which("go") is not None
            and _installed("golang-github-nats-io-go-nats-dev")
        )
        if not deps.peers:
            deps.notes.append("Go or NATS could not be installed: peer measurements skipped")
        deps.nats_py = _pip_install("nats", "nats-py", deps.notes)
        if not deps.nats_py:
            deps.notes.append("nats-py is missing: the JetStream side of measurement 5 is skipped")
    return deps


if __name__ == "__main__":
    result = ensure(peers="--no-peers" not in sys.argv)
    print(result)
    sys.exit(0 if result.wrk else 1)
