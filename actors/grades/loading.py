"""Loading a backup into the map a slice at a time, so the storage actor keeps answering.

The rows come from a thread (a peer's /backup, restore.BackupDownload, or this
replica's own snapshot file, snapshot_file.SnapshotLoad) as events on a bounded
queue: ("meta", dict), ("rows", Block) many times, then ("done", rows) or
("failed", reason). Each ``step()`` takes what arrived for at most SLICE_MS and
merges it into the table, and reports progress every PROGRESS_EVERY_MS.
"""

from __future__ import annotations

import logging
import queue
from typing import Any, Protocol

from actors.grades.backup import Block
from actors.grades.records import GradeTable
from actors.runtime.base import monotonic_ms

__all__ = ["TableLoad", "RowSource", "LoadEvent", "SLICE_MS"]

SLICE_MS = 50
"""Longest one step loads before the actor looks at its sockets again."""
PROGRESS_EVERY_MS = 2000

LoadEvent = tuple[str, Any]
"""("meta", dict), ("rows", backup.Block), ("done", rows) or ("failed", reason)."""


class RowSource(Protocol):
    """A thread producing LoadEvents (restore.BackupDownload, snapshots.SnapshotLoad)."""

    @property
    def events(self) -> queue.Queue[LoadEvent]: ...

    def start(self) -> None: ...

    def cancel(self) -> None: ...


class TableLoad:
    """One load of rows into ``table`` from a started source thread."""

    def __init__(self, source: RowSource, table: GradeTable, log: logging.Logger) -> None:
        self.source = source
        self.table = table
        self.log = log
        self.rows = 0
        self.meta: dict[str, Any] | None = None
        self.started_ms = self._progress_ms = monotonic_ms()

    def cancel(self) -> None:
        self.source.cancel()

    def rate(self) -> float:
        """Rows a second so far."""
        return self.rows * 1000 / max(1, monotonic_ms() - self.started_ms)

    def elapsed_s(self) -> float:
        return (monotonic_ms() - self.started_ms) / 1000

    def step(self, now: int) -> LoadEvent | None:
        """Load for up to SLICE_MS.

        Returns:
            None while loading; ("done", meta) once every row is in the table;
            ("failed", reason) if the source failed (the rows loaded so far stay:
            replaying the log over them is exact, merging is idempotent).
        """
        events = self.source.events
        while monotonic_ms() - now < SLICE_MS and not events.empty():
            kind, value = events.get_nowait()
            if kind == "rows":
                try:
                    self._merge(value)
                except (ValueError, OverflowError) as exc:
                    return "failed", f"rows that do not load: {exc}"
            elif kind == "meta":
                self.meta = value
                self.log.info(
                    "backup of %s rows taken at position %s (%s, %s)",
                    value["rows"],
                    value["position"],
                    value["generated_at"],
                    value["format"],
                )
            elif kind == "done":
                return "done", self.meta
            elif kind == "failed":
                return "failed", value
        if self.rows and monotonic_ms() - self._progress_ms >= PROGRESS_EVERY_MS:
            self._progress_ms = monotonic_ms()
            self.log.info("restore: %d rows loaded (%.0f rows/s)", self.rows, self.rate())
        return None

    def _merge(self, block: Block) -> None:
        # NOTE: no per-row clock update: the backup's hlc covers every row as of
        # its position, and replaying the log from there covers the rest.
        self.table.load(block.keys, block.values, block.versions)
        self.rows += len(block.keys)
