"""This process's id, kept without a system call per use.

glibc no longer caches getpid(), and a worker asked for its pid several times a
request (a fresh request id, prometheus_client's fork check on every counter and
histogram write): five system calls per request, ~9% of a setter worker's CPU under
load (py-spy). The id is read once and again in a child after each fork.
"""

from __future__ import annotations

import os

__all__ = ["current_pid"]

_pid = os.getpid()


def _after_fork() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_after_fork)


def current_pid() -> int:
    """os.getpid(), without the system call."""
    return _pid
