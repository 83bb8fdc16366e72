"""How a tool ends: its exit codes and the one-line failure, apart from the HTTP helpers.

Kept apart from tools/remote.py so that ``grades replica`` and ``grades bus``,
which share the command with the tools, do not import http.client and urllib
on every start (issue 18: a fresh cluster's start is its processes' imports).
"""

from __future__ import annotations

__all__ = ["EXIT_ERROR", "EXIT_FAILED", "EXIT_OK", "ToolError"]

EXIT_OK = 0
EXIT_FAILED = 1
"""The tool ran and found a problem: differences, failed rows, a replica not ready."""
EXIT_ERROR = 2
"""The tool could not do its job: unreachable replica, HTTP error, unreadable file."""


class ToolError(Exception):
    """A failure the tool reports in one line and exits EXIT_ERROR on."""
