"""A bus whose log is on a tiny tmpfs, to fill its disk on purpose (bus and grades tests)."""

from __future__ import annotations

import contextlib
import subprocess

import pytest

__all__ = ["bus_on_a_tiny_disk", "tiny_filesystem"]


@contextlib.contextmanager
def tiny_filesystem(path, size: str):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextlib.contextmanager
def bus_on_a_tiny_disk(cluster, tmp_path):
    """A started bus whose log is on a 512 KiB tmpfs, 300 KB of it taken by a filler file
    (delete it and space returns); yields (bus, filler)."""
    with tiny_filesystem(tmp_path / "tiny", "512k") as mount:
        filler = mount / "filler"
        filler.write_bytes(b"\0" * 300_000)
        bus = cluster.bus(start=False)
        bus.env["BUS_LOG_DIR"] = str(mount / "bus")
        bus.start()
        bus.wait_listening()
        yield bus, filler
