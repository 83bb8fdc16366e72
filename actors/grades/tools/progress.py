"""The operator tools' progress line on stderr, drawn by rich.

On a terminal rich redraws the line in place (at most REFRESH_PER_S times a
second) and removes it at the end; anywhere else (a pipe, a log file, a test)
nothing is printed while the work runs and one summary line is printed at the
end, so logs do not fill with redraws.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import TextColumn

__all__ = ["Progress", "format_bytes", "format_rows"]

REFRESH_PER_S = 4
BYTES_PER_MB = 1_000_000


def format_bytes(count: int, seconds: float) -> str:
    """``12.3 MB in 1.0 s (12.3 MB/s)``."""
    mb = count / BYTES_PER_MB
    return f"{mb:,.1f} MB in {seconds:.1f} s ({mb / max(seconds, 1e-9):,.1f} MB/s)"


def format_rows(count: int, seconds: float) -> str:
    """``12,345 rows in 1.0 s (12,345 rows/s)``."""
    return f"{count:,} rows in {seconds:.1f} s ({count / max(seconds, 1e-9):,.0f} rows/s)"


class Progress:
    """Counts work done and shows it; see the module docstring."""

    def __init__(
        self,
        label: str,
        describe: Callable[[int, float], str],
        stream: TextIO | None = None,
        interactive: bool | None = None,
    ):
        """Start counting now.

        Args:
            label: what is being done, e.g. ``backup``.
            describe: formats (count, seconds), e.g. format_bytes.
            stream: where to write; stderr by default.
            interactive: redraw in place; by default, whether stream is a terminal.
        """
        self.label = label
        self.describe = describe
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.count = 0
        self.started = time.monotonic()
        self._stopped: float | None = None
        self._live: RichProgress | None = None
        if self.interactive:
            console = Console(file=self.stream, force_terminal=True, highlight=False)
            self._live = RichProgress(
                TextColumn("{task.description}", markup=False),
                console=console,
                transient=True,
                refresh_per_second=REFRESH_PER_S,
            )
            self._task = self._live.add_task(self.line())
            self._live.start()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the start, up to stop() if it was called."""
        return (self._stopped or time.monotonic()) - self.started

    def stop(self) -> None:
        """Stop the clock: the rate shown from now on is the final one."""
        self._stopped = self._stopped or time.monotonic()

    def add(self, amount: int) -> None:
        """Count ``amount`` more units (rich redraws on its own clock)."""
        self.count += amount
        if self._live is not None:
            self._live.update(self._task, description=self.line())

    def line(self) -> str:
        """The current state, e.g. ``backup: 12.3 MB in 1.0 s (12.3 MB/s)``."""
        return f"{self.label}: {self.describe(self.count, self.elapsed_s)}"

    def finish(self, suffix: str = "") -> str:
        """Remove the live line, print the final one and return it."""
        self.stop()
        if self._live is not None:
            self._live.stop()
            self._live = None
        line = self.line() + suffix
        self.stream.write(line + "\n")
        self.stream.flush()
        return line
