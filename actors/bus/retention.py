"""Log retention: which old segments of a stream the bus may delete, and when.

A consumer (a grades replica) that has written a snapshot of everything below
position P on its own disk needs the log only from P on, and says so with
BusRetain(stream, consumer, P). The bus keeps the newest such position of
every consumer that ever reported, in ``<stream dir>/retain.json`` (fsynced),
and their minimum is the **floor**: nobody needs a record below it.

A closed segment is deleted when it lies wholly below the floor and the
retention limits say the log is too big or the segment too old:

- ``retain_bytes``: the stream's segments are trimmed, oldest first, while their
  total is over this size;
- ``retain_age_s``: a segment whose newest record is older than this goes.

Either limit at 0 is off; both off keeps everything. No consumer registered
means a floor of 0: a log nobody has snapshotted is never trimmed. Why the bus
decides and not the replicas: it alone sees the whole log and every consumer;
a replica only reports a fact about itself (how far its snapshot reaches).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from actors.bus.log import Log
from actors.bus.segment import fsync_path

__all__ = ["RETAIN_NAME", "Retention"]

RETAIN_NAME = "retain.json"


class Retention:
    """The consumers' snapshot positions of one stream, and the trimming they allow."""

    def __init__(self, directory: Path, retain_bytes: int, retain_age_s: int):
        self.path = Path(directory) / RETAIN_NAME
        self.retain_bytes = retain_bytes
        self.retain_age_ms = retain_age_s * 1000
        self.positions: dict[str, int] = {}
        self.log_id = ""
        try:
            saved = json.loads(self.path.read_text("utf-8"))
            self.positions = {str(k): int(v) for k, v in saved["positions"].items()}
            self.log_id = str(saved.get("log_id", ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # none yet (or unreadable): nothing is trimmed until consumers report

    def record(self, consumer: str, position: int, log_id: str) -> None:
        """A consumer's snapshot covers every position below ``position`` (made durable)."""
        if log_id != self.log_id:  # positions of another log mean nothing here
            self.positions, self.log_id = {}, log_id
        if self.positions.get(consumer) == position:
            return
        self.positions[consumer] = max(position, self.positions.get(consumer, 0))
        tmp = self.path.with_name(RETAIN_NAME + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"log_id": self.log_id, "positions": self.positions}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)

    def floor(self) -> int:
        """No registered consumer needs a position below this (0 if none registered)."""
        return min(self.positions.values()) if self.positions else 0

    def trim(self, log: Log, now_ms: int) -> int:
        """Delete what the limits and the floor allow.

        Returns:
            Bytes freed.
        """
        if not (self.retain_bytes or self.retain_age_ms) or self.log_id != log.log_id:
            return 0
        extents = log.segment_extents()
        total = sum(size for _, size, _ in extents)
        floor, cut = self.floor(), 0
        for k in range(len(extents) - 1):  # never the active (last) segment
            end = extents[k + 1][0]
            newest_ms = extents[k + 1][2]  # no record of segment k is newer than this
            too_big = self.retain_bytes and total > self.retain_bytes
            too_old = self.retain_age_ms and 0 < newest_ms < now_ms - self.retain_age_ms
            if end > floor or not (too_big or too_old):
                break
            total -= extents[k][1]
            cut = end
        return log.drop_before(cut) if cut else 0
