"""Private ZMQ endpoints of one service instance: ipc sockets under its run directory.

Two instances started from one checkout differ only in their listen address,
so each derives its own run directory (e.g. ``data/segments-8100``) and its
actors' endpoints live there. A unix socket path has a hard limit of about
107 bytes; a deep checkout falls back to a short hashed path in /tmp.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

__all__ = ["ipc_endpoint", "MAX_IPC_PATH"]

MAX_IPC_PATH = 100
"""sun_path is 108 bytes with the NUL; keep a margin."""


def ipc_endpoint(run_dir: Path, name: str) -> str:
    """``ipc://<run_dir>/<name>.sock``, or a short /tmp path when that would be too long."""
    path = Path(run_dir).resolve() / f"{name}.sock"
    if len(str(path)) > MAX_IPC_PATH:
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:16]
        path = Path(tempfile.gettempdir()) / f"actors-{digest}-{name[:20]}.sock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"ipc://{path}"
