"""The read half of the bus log (actors.bus.log.Log): records from a position, or a time.

Kept apart from log.py for size only: ``LogReader`` is a mixin that uses the
segment table, the sparse per-segment index and the read hints that ``Log``
maintains, and never writes. Readers see committed records only; a read below
the first position the log keeps (retention deleted it) raises LogGone.
"""

from __future__ import annotations

import bisect
import os

from actors.bus.segment import BODY, BODY_BYTES, HEADER, HEADER_BYTES, LogCorruption, Record

__all__ = ["HINT_SLOTS", "LogGone", "LogReader"]

HINT_SLOTS = 64  # remembered (next position -> byte offset) pairs of recent reads


class LogGone(ValueError):
    """A read below the first position the log still keeps (retention deleted it)."""


class LogReader:
    """Reading methods of ``Log``; see there for the state they use."""

    # -- reading ----------------------------------------------------------------

    def read(
        self, from_position: int, max_records: int = 1000, max_bytes: int = 1 << 20
    ) -> list[Record]:
        """Committed records starting exactly at ``from_position``.

        Args:
            from_position: First position wanted, >= 0.
            max_records: Upper bound on records returned.
            max_bytes: Soft bound on encoded bytes returned; the first record
                is returned even if it alone exceeds it.

        Returns:
            Consecutive records; empty if ``from_position >= committed_end``.
        """
        self._require_open()
        if from_position < 0:
            raise ValueError(f"negative position {from_position}")
        if from_position < self.first_position:
            raise LogGone(
                f"position {from_position} is older than the retained log, which "
                f"starts at {self.first_position}"
            )
        out: list[Record] = []
        pos, budget = from_position, max(max_bytes, 0)
        while pos < self._committed_end and len(out) < max_records:
            k = bisect.bisect_right(self._bases, pos) - 1
            used, exhausted = self._read_segment(k, pos, out, max_records, budget)
            budget -= used
            if not exhausted or budget <= 0:
                break
            pos = from_position + len(out)
        return out

    def _locate(self, k: int, pos: int) -> tuple[int, int, int]:
        """Returns (position, offset) at or before ``pos`` in segment ``k`` and skip end."""
        hint = self._hints.get(pos)
        if hint is not None and hint[0] == k:
            return pos, hint[1], hint[1]
        seg = self._segments[k]
        j = bisect.bisect_right(seg.idx_pos, pos) - 1
        p, off = seg.idx_pos[j], seg.idx_off[j]
        if p == pos:
            return p, off, off
        skip_end = seg.idx_off[j + 1] if j + 1 < len(seg.idx_off) else seg.size
        return p, off, skip_end

    def _read_segment(
        self, k: int, pos: int, out: list[Record], limit: int, budget: int
    ) -> tuple[int, bool]:
        """Decode records of segment ``k`` from ``pos`` into ``out``.

        Returns:
            (bytes used, whether the segment's committed records ran out).
        """
        seg = self._segments[k]
        p, off, skip_end = self._locate(k, pos)
        stop, used = seg.base + seg.count, 0
        buf = os.pread(seg.fd, min(seg.size, skip_end + budget) - off, off)
        i = 0
        while p < stop and len(out) < limit:
            avail = len(buf) - i
            size = HEADER_BYTES + HEADER.unpack_from(buf, i)[0] if avail >= HEADER_BYTES else 0
            if not size or size > avail:  # only the first record may exceed the budget
                if out:
                    break
                off, i = off + i, 0
                size = HEADER_BYTES + HEADER.unpack(os.pread(seg.fd, HEADER_BYTES, off))[0]
                buf = os.pread(seg.fd, size, off)
            if p >= pos:
                if out and used + size > budget:
                    break
                out.append(self._decode(buf, i, size, p))
                used += size
            i, p = i + size, p + 1
        if p < stop:
            if len(self._hints) >= HINT_SLOTS:
                del self._hints[next(iter(self._hints))]
            self._hints[p] = (k, off + i)
        return used, p >= stop

    @staticmethod
    def _decode(buf: bytes, i: int, size: int, expected: int) -> Record:
        position, time_ms, seq, origin_len = BODY.unpack_from(buf, i + HEADER_BYTES)
        if position != expected:
            raise LogCorruption(f"read position {position} where {expected} was expected")
        o = i + HEADER_BYTES + BODY_BYTES
        origin = buf[o : o + origin_len].decode("utf-8")
        return Record(position, time_ms, origin, seq, buf[o + origin_len : i + size])

    def position_at_time(self, time_ms: int) -> int:
        """Position of the first committed record stamped at or after ``time_ms``.

        Args:
            time_ms: Wall time in milliseconds.

        Returns:
            That position, or ``committed_end`` if every record is older.
        """
        self._require_open()
        k = bisect.bisect_left(self._first_times, time_ms)
        if k == 0:
            return self._segments[0].base if self._first_times else self._committed_end
        seg = self._segments[k - 1]
        j = bisect.bisect_left(seg.idx_time, time_ms)  # >= 1: idx_time[0] < time_ms
        p, off = seg.idx_pos[j - 1], seg.idx_off[j - 1]
        end_off = seg.idx_off[j] if j < len(seg.idx_off) else seg.size
        buf, i = os.pread(seg.fd, end_off - off, off), 0
        while i < len(buf):
            if BODY.unpack_from(buf, i + HEADER_BYTES)[1] >= time_ms:
                return p
            i, p = i + HEADER_BYTES + HEADER.unpack_from(buf, i)[0], p + 1
        return p
