"""The operator tools' progress line on stderr.

On a terminal the line is redrawn in place (carriage return) at most every
REFRESH_INTERVAL_S; anywhere else (a pipe, a log file, a test) nothing is
printed while the work runs and one summary line is printed at the end, so
logs do not fill with carriage returns.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress", "format_bytes", "format_rows"]

REFRESH_INTERVAL_S = 0.25
BYTES_PER_MB = 1_000_000
CLEAR_TO_END_OF_LINE = "\033[K"


def format_bytes(count: int, seconds: float) -> str:
    """``12.3 MB in 1.0 s (12.3 MB/s)``."""
    mb = count / BYTES_PER_MB
    return f"{mb:,.1f} MB in {seconds:.1f} s ({mb / max(seconds, 1e-9):,.1f} MB/s)"


def format_rows(count: int, seconds: float) -> str:
    """``12,345 rows in 1.0 s (12,345 rows/s)``."""
    return f"{count:,} rows in {seconds:.1f} s ({count / max(seconds, 1e-9):,.0f} rows/s)"


class Progress:
    """Counts work done and shows it; see the module docstring."""

    def __init__(self, label: str, describe: Callable[[int, float], str],
                 stream: TextIO | None = None, interactive: bool | None = None):
        """Start counting now.

        Args:
            label: what is being done, e.g. ``backup``.
            describe: formats (count, seconds), e.g. format_bytes.
            stream: where to write; stderr by default.
            interactive: redraw in place; by default, whether stream is a TTY.
        """
        self.label = label
        self.describe = describe
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.count = 0
        self.started = time.monotonic()
        self._stopped: float | None = None
        self._drawn_at = 0.0

    @property
    def elapsed_s(self) -> float:
        """Seconds since the start, up to stop() if it was called."""
        return (self._stopped or time.monotonic()) - self.started

    def stop(self) -> None:
        """Stop the clock: the rate shown from now on is the final one."""
        self._stopped = self._stopped or time.monotonic()

    def add(self, amount: int) -> None:
        """Count ``amount`` more units; redraw if it is time to."""
        self.count += amount
        if self.interactive:
            now = time.monotonic()
            if now - self._drawn_at >= REFRESH_INTERVAL_S:
                self._drawn_at = now
                self._write("\r" + self.line() + CLEAR_TO_END_OF_LINE)

    def line(self) -> str:
        """The current state, e.g. ``backup: 12.3 MB in 1.0 s (12.3 MB/s)``."""
        return f"{self.label}: {self.describe(self.count, self.elapsed_s)}"

    def finish(self, suffix: str = "") -> str:
        """Print the final line (replacing the live one) and return it."""
        self.stop()
        line = self.line() + suffix
        self._write(("\r" + line + CLEAR_TO_END_OF_LINE if self.interactive else line) + "\n")
        return line

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
