"""Log retention: which old segments of a stream the bus may delete, and when.

A consumer (a grades replica) that has written a snapshot of everything below
position P on its own disk needs the log only from P on, and says so with
BusRetain(stream, consumer, P). The bus keeps the newest such position of
every consumer that ever reported, in ``<stream dir>/retain.json`` (fsynced),
and the minimum over the **live** ones is the **floor**: nobody needs a record
below it.

A consumer is live while it reports: its snapshotter repeats its position every
snapshot interval even when nothing moved. One silent for longer than
``silent_s`` (0: never) stops holding the floor back and is named in a warning;
it holds it again from its next report (and if the log was trimmed past its
position meanwhile, it is refused loudly and restores from a peer). An operator
removes one for good with BusRetire (``grades retire N``). Silence is timed from
the bus's own start at the latest, so a bus that was down does not time out
everyone it comes back to.

A closed segment is deleted when it lies wholly below the floor and the
retention limits say the log is too big or the segment too old:

- ``retain_bytes``: the stream's segments are trimmed, oldest first, while their
  total is over this size;
- ``retain_age_s``: a segment whose newest record is older than this goes.

Either limit at 0 is off; both off keeps everything. No live consumer means a
floor of 0: a log nobody (live) has snapshotted is never trimmed. Why the bus
decides and not the replicas: it alone sees the whole log and every consumer;
a replica only reports a fact about itself (how far its snapshot reaches).
``Consumers`` is the floor's bookkeeping alone, shared with grades' JetStream
trimmer (actors.grades.jetstream.retention), which applies the same rules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from actors.bus.log import Log
from actors.bus.segment import fsync_path

__all__ = ["RETAIN_NAME", "Consumers", "Retention"]

RETAIN_NAME = "retain.json"


class Consumers:
    """Consumers' snapshot positions and when each was last heard; the floor the live hold."""

    def __init__(self, silent_s: int) -> None:
        self.silent_ms = silent_s * 1000
        self.positions: dict[str, int] = {}
        self.heard_ms: dict[str, int] = {}
        self.warned: set[str] = set()  # consumers already reported as silent

    def heard(self, consumer: str, position: int, at_ms: int) -> None:
        """``consumer`` needs the log from ``position`` on, as of wall-clock ``at_ms``."""
        self.positions[consumer] = position
        self.heard_ms[consumer] = max(at_ms, self.heard_ms.get(consumer, 0))

    def forget(self, consumer: str) -> bool:
        """Remove a consumer (retired); False if it was not known."""
        self.heard_ms.pop(consumer, None)
        self.warned.discard(consumer)
        return self.positions.pop(consumer, None) is not None

    def silent(self, consumer: str, now_ms: int) -> bool:
        """Heard from longer ago than the limit: no longer holds the floor."""
        heard = self.heard_ms.get(consumer)
        return bool(self.silent_ms) and heard is not None and now_ms - heard > self.silent_ms

    def floor(self, now_ms: int) -> int:
        """No live consumer needs a position below this (0 if none is live)."""
        live = [p for c, p in self.positions.items() if not self.silent(c, now_ms)]
        return min(live) if live else 0

    def newly_silent(self, now_ms: int) -> list[str]:
        """Consumers that went silent since the last call (for one warning each)."""
        silent = {c for c in self.positions if self.silent(c, now_ms)}
        new, self.warned = sorted(silent - self.warned), silent
        return new

    def table(self, now_ms: int) -> dict[str, dict[str, Any]]:
        """Per consumer: its position, seconds since heard, whether it holds the floor."""
        return {
            consumer: {
                "position": position,
                "silent_s": max(0, now_ms - self.heard_ms.get(consumer, 0)) // 1000,
                "holds_floor": not self.silent(consumer, now_ms),
            }
            for consumer, position in sorted(self.positions.items())
        }


class Retention:
    """The consumers' snapshot positions of one stream, and the trimming they allow."""

    def __init__(
        self,
        directory: Path,
        retain_bytes: int,
        retain_age_s: int,
        silent_s: int = 0,
        started_ms: int = 0,
    ):
        self.path = Path(directory) / RETAIN_NAME
        self.retain_bytes = retain_bytes
        self.retain_age_ms = retain_age_s * 1000
        self.consumers = Consumers(silent_s)
        self.log_id = ""
        try:
            saved = json.loads(self.path.read_text("utf-8"))
            for consumer, position in saved["positions"].items():
                self.consumers.heard(str(consumer), int(position), started_ms)
            self.log_id = str(saved.get("log_id", ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # none yet (or unreadable): nothing is trimmed until consumers report

    @property
    def positions(self) -> dict[str, int]:
        return self.consumers.positions

    def record(self, consumer: str, position: int, log_id: str, now_ms: int = 0) -> None:
        """A consumer's snapshot covers every position below ``position`` (made durable)."""
        if log_id != self.log_id:  # positions of another log mean nothing here
            self.consumers = Consumers(self.consumers.silent_ms // 1000)
            self.log_id = log_id
        before = self.positions.get(consumer)
        self.consumers.heard(consumer, max(position, before or 0), now_ms)
        if before != self.positions[consumer]:
            self._save()

    def retire(self, consumer: str) -> bool:
        """Stop keeping the log for ``consumer`` (made durable); False if unknown."""
        if not self.consumers.forget(consumer):
            return False
        self._save()
        return True

    def _save(self) -> None:
        tmp = self.path.with_name(RETAIN_NAME + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"log_id": self.log_id, "positions": self.positions}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        fsync_path(self.path.parent)

    def floor(self, now_ms: int = 0) -> int:
        """No live consumer needs a position below this (0 if none is live)."""
        return self.consumers.floor(now_ms)

    def trim(self, log: Log, now_ms: int) -> int:
        """Delete what the limits and the floor allow.

        Returns:
            Bytes freed.
        """
        if not (self.retain_bytes or self.retain_age_ms) or self.log_id != log.log_id:
            return 0
        extents = log.segment_extents()
        total = sum(size for _, size, _ in extents)
        floor, cut = self.floor(now_ms), 0
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
