"""Beyond honcho: the Procfiles exported as systemd units (`honcho export systemd`, as
the README shows) run every Procfile command, restarted by systemd when it exits."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from actors.runtime.testing import ROOT

APP = "actors"
EXPORT_TIMEOUT_S = 60


def _procfile(path: Path) -> dict[str, str]:
    entries = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            entries[name.strip()] = command.strip()
    return entries


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A systemd unit file: section -> key -> values (keys like Environment repeat)."""
    sections: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for line in path.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif "=" in line:
            key, value = line.split("=", 1)
            sections[section][key].append(value)
    return sections


@pytest.mark.parametrize("procfile", ["Procfile", "Procfile.jetstream"])
def test_every_procfile_command_becomes_a_unit_systemd_restarts(procfile, tmp_path):
    argv = [sys.executable, "-m", "honcho", "export", "-f", str(ROOT / procfile)]
    argv += ["-d", str(ROOT), "-a", APP, "-u", "nobody", "systemd", str(tmp_path)]
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=EXPORT_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, done.stderr
    entries = _procfile(ROOT / procfile)
    master = _unit(tmp_path / f"{APP}.target")
    wanted = master["Unit"]["Wants"][0].split()
    assert sorted(wanted) == sorted(f"{APP}-{name}.target" for name in entries)
    for name, command in entries.items():
        unit = _unit(tmp_path / f"{APP}-{name}-1.service")
        service = unit["Service"]
        assert service["ExecStart"] == [f"/bin/sh -lc '{command}'"], name
        assert service["Restart"] == ["always"], name
        assert service["KillMode"] == ["process"], name  # children stop with their parent
        assert service["WorkingDirectory"] == [str(ROOT)], name
        assert "RestartSec" not in service, name  # systemd's default 100ms, as make chaos
        environment = dict(value.split("=", 1) for value in service["Environment"])
        assert environment["DATABASE_URI"].startswith("postgresql://"), name  # from .env
    assert len(list(tmp_path.glob("*.service"))) == len(entries)
