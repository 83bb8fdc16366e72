"""A child process that dies with its parent: PR_SET_PDEATHSIG on Linux.

A supervisor or a gunicorn master killed with SIGKILL stops nothing itself; without
this its children keep running, holding ports and sockets, and whatever starts the
service again cannot take them over (issue 19: orphaned gunicorn workers kept a
setter's port for as long as the run lasted).
"""

from __future__ import annotations

import ctypes
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
"""Resolved at import, not in a forked child: between fork and exec a child should only call."""
_SIGTERM = int(signal.SIGTERM)


def die_with_parent(signum: int = _SIGTERM) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent dies.

    Call it in the child (after fork, before exec, or first thing in a forked
    worker); then check that the parent is still the one expected, since it may
    have died before the call. A no-op off Linux.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signum)
