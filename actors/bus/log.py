"""Append-only, segmented, checksummed log on disk with group commit.

This module owns one log directory: its ``meta.json`` (the log's identity,
``log_id``, created once and kept forever) and its segment files, named
``f"{first_position:020d}.log"``. Retention (``drop_before``) deletes whole
old segments; ``meta.json`` then records the first position kept, so a log
may start above 0 and a read below its start raises LogGone. Producers
``append`` records into a memory buffer and ``commit`` makes the whole buffer
durable with one write and one fdatasync per segment touched. Readers only
ever see committed records.

The record layout is actors.bus.segment's. Reads find a position through the
segment table (bisect on first positions), each segment's sparse index and a
few hints of where recent reads stopped.

Recovery (``Log.open``) keeps exactly the intact prefix of the log: the first
record that is torn, fails its checksum or does not carry the expected next
position ends the log; its segment is cut there and later segments deleted.
A ``Log`` is not thread-safe: one owner appends, commits and reads.

NOTE: ~500 lines, over STYLE.md's ~400: reading and writing share one state (the
segment table, the sparse indexes and read hints that commit, rollback and
retention change, the committed end), so they are one class in one file; the
on-disk record format and one segment's scan live in segment.py.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import re
import secrets
import struct
import time
from pathlib import Path
from zlib import crc32

from actors.bus.segment import (
    BODY,
    BODY_BYTES,
    HEADER,
    HEADER_BYTES,
    INDEX_EVERY_RECORDS,
    MAX_ORIGIN_BYTES,
    MAX_RECORD_BYTES,
    LogCorruption,
    Record,
    RecoveryReport,
    Segment,
    fsync_path,
    scan,
    write_all,
)

__all__ = ["INDEX_EVERY_RECORDS", "MAX_ORIGIN_BYTES", "MAX_RECORD_BYTES", "SEGMENT_BYTES"]
__all__ += ["HINT_SLOTS", "Log", "LogCorruption", "LogGone", "Record", "RecoveryReport"]

logger = logging.getLogger(__name__)

SEGMENT_BYTES = 64 * 1024 * 1024  # roll to a new segment file past this size
META_NAME = "meta.json"
SEGMENT_NAME = re.compile(r"^(\d{20})\.log$")
_PARTS = 4  # pending parts per record: header, body head, origin, data
HINT_SLOTS = 64  # remembered (next position -> byte offset) pairs of recent reads


class LogGone(ValueError):
    """A read below the first position the log still keeps (retention deleted it)."""


class Log:
    """A durable sequence of ``Record``s with dense positions from 0."""

    def __init__(
        self, directory: str | os.PathLike[str], segment_bytes: int = SEGMENT_BYTES
    ) -> None:
        """Store configuration only; ``open`` touches the disk."""
        self._dir = Path(directory)
        self._segment_bytes = segment_bytes
        self._log_id: str | None = None
        self._open = False
        self._segments: list[Segment] = []
        self._bases: list[int] = []  # segment first positions, for bisect
        self._first_times: list[int] = []  # first time_ms of each non-empty segment
        self._hints: dict[int, tuple[int, int]] = {}  # position -> (segment index, offset)
        self._committed_end = 0
        self._first = 0  # first position kept (meta.json's "first"; 0 until retention)
        self._last_time = 0
        # The buffer: _PARTS byte strings, one encoded size and one time_ms per record.
        self._parts: list[bytes] = []
        self._sizes: list[int] = []
        self._times: list[int] = []
        self._pending_bytes = 0

    @property
    def log_id(self) -> str:
        """Identity of this log, stable across reopens (set by ``open``)."""
        if self._log_id is None:
            raise RuntimeError("log is not open")
        return self._log_id

    @property
    def end(self) -> int:
        """Next position to be assigned (committed plus buffered records)."""
        return self._committed_end + len(self._sizes)

    @property
    def first_position(self) -> int:
        """The oldest position still readable; older ones were deleted by retention."""
        return self._segments[0].base if self._segments else self._first

    @property
    def committed_end(self) -> int:
        """Records below this position are durable and readable."""
        return self._committed_end

    # -- opening and recovery ---------------------------------------------------

    def open(self) -> RecoveryReport:
        """Load identity, recover segments and get ready to append.

        Returns:
            What recovery kept and cut; the caller decides how to log it.
        """
        if self._open:
            raise RuntimeError("log is already open")
        self._dir.mkdir(parents=True, exist_ok=True)
        self._committed_end = self._last_time = 0
        names = (SEGMENT_NAME.fullmatch(path.name) for path in self._dir.iterdir())
        found = sorted((int(m.group(1)), self._dir / m.group(0)) for m in names if m)
        self._log_id = self._load_meta(bool(found))
        try:
            report = self._recover(found)
            if not self._segments:
                self._committed_end = self._first
                self._new_segment(self._first)
        except BaseException:
            self._release()
            raise
        self._open = True
        return report._replace(segments=len(self._segments))

    def _load_meta(self, have_segments: bool) -> str:
        """Read ``log_id``, creating it atomically for a brand new log."""
        path = self._dir / META_NAME
        if path.exists():
            try:
                meta = json.loads(path.read_text("utf-8"))
                log_id, self._first = meta["log_id"], int(meta.get("first", 0))
            except (ValueError, KeyError, TypeError) as exc:
                raise LogCorruption(f"{path}: unreadable meta: {exc}") from exc
            if not isinstance(log_id, str) or not log_id:
                raise LogCorruption(f"{path}: bad log_id {log_id!r}")
            return log_id
        if have_segments:
            raise LogCorruption(f"{self._dir}: segments exist but {META_NAME} is missing")
        log_id = secrets.token_hex(8)
        self._first = 0
        self._write_meta(log_id)
        return log_id

    def _write_meta(self, log_id: str) -> None:
        path = self._dir / META_NAME
        tmp = path.with_name(META_NAME + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"log_id": log_id, "format": 1, "first": self._first}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fsync_path(self._dir)

    def _recover(self, found: list[tuple[int, Path]]) -> RecoveryReport:
        """Keep the intact prefix of ``found``; cut the first bad record and all after it."""
        # Segments wholly below "first" outlived a crash in the middle of drop_before.
        while len(found) > 1 and found[1][0] <= self._first:
            found.pop(0)[1].unlink()
        expected = min(self._first, found[0][0]) if found else self._first
        cut_bytes, removed, reason = 0, 0, ""
        for k, (base, path) in enumerate(found):
            seg = Segment(base, path)
            buf = path.read_bytes()
            if base != expected:
                reason, good = f"segment starts at {base} where {expected} was expected", 0
            else:
                self._last_time, good, reason = scan(buf, seg, self._last_time)
            if reason:
                reason = f"{path.name} offset {good}: {reason}"
                cut_bytes += len(buf) - good
                if good:
                    os.truncate(path, good)
                    fsync_path(path)
                    self._adopt(seg)
                else:
                    removed += 1
                    path.unlink()
                for _, later in found[k + 1 :]:
                    cut_bytes += later.stat().st_size
                    removed += 1
                    later.unlink()
                fsync_path(self._dir)
                break
            self._adopt(seg)
            expected = base + seg.count
        return RecoveryReport(self._committed_end, len(self._segments), cut_bytes, removed, reason)

    def _adopt(self, seg: Segment) -> None:
        """Open a recovered segment and add it to the in-memory log."""
        seg.fd = os.open(seg.path, os.O_RDWR | os.O_APPEND)
        seg.size = os.fstat(seg.fd).st_size
        self._segments.append(seg)
        self._bases.append(seg.base)
        if seg.count:
            self._first_times.append(seg.idx_time[0])
        self._committed_end = seg.base + seg.count

    def _new_segment(self, base: int) -> Segment:
        path = self._dir / f"{base:020d}.log"
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
        fsync_path(self._dir)
        seg = Segment(base, path, fd)
        self._segments.append(seg)
        self._bases.append(base)
        logger.debug("log %s: new segment %s", self._dir, path.name)
        return seg

    # -- writing ----------------------------------------------------------------

    def append(self, origin: str, seq: int, data: bytes, time_ms: int | None = None) -> Record:
        """Buffer one record; it becomes durable and readable at the next ``commit``.

        Args:
            origin: Producer id, utf-8 encodable, under 64 KiB.
            seq: Producer's sequence number, unsigned 64-bit.
            data: Opaque payload.
            time_ms: Wall time to stamp; defaults to now. Raised to the last
                stamped time so time never goes backwards in the log.

        Returns:
            The record with its assigned position and time.
        """
        self._require_open()
        now = time.time_ns() // 1_000_000 if time_ms is None else time_ms
        stamp = max(self._last_time, now)
        origin_b = origin.encode("utf-8")
        data = bytes(data)
        length = BODY_BYTES + len(origin_b) + len(data)
        if length > MAX_RECORD_BYTES or len(origin_b) > MAX_ORIGIN_BYTES:
            raise ValueError(f"record too large: body {length} bytes, origin {len(origin_b)}")
        position = self._committed_end + len(self._sizes)
        try:
            head = BODY.pack(position, stamp, seq, len(origin_b))
        except struct.error as exc:
            raise ValueError(f"seq/time_ms out of range: {exc}") from exc
        crc = crc32(data, crc32(origin_b, crc32(head)))
        self._parts += (HEADER.pack(length, crc), head, origin_b, data)
        self._sizes.append(HEADER_BYTES + length)
        self._times.append(stamp)
        self._pending_bytes += HEADER_BYTES + length
        self._last_time = stamp
        return Record(position, stamp, origin, seq, data)

    def commit(self) -> int:
        """Make every buffered record durable: one write and one fdatasync per segment.

        Returns:
            The new ``committed_end``.
        """
        if not self._sizes:
            return self._committed_end
        self._require_open()
        active, known = self._segments[-1], len(self._segments)
        try:
            if active.size + self._pending_bytes <= self._segment_bytes:
                plan = [(active, 0, len(self._sizes))]
            else:
                plan = self._plan_rolls(active)
            for seg, a, b in plan:
                write_all(seg.fd, b"".join(self._parts[a * _PARTS : b * _PARTS]))
            for seg, _, _ in plan:
                os.fdatasync(seg.fd)
        except BaseException:
            self._rollback(active, known)
            raise
        for seg, a, b in plan:
            self._index(seg, a, b)
        self._committed_end += len(self._sizes)
        self._parts, self._sizes, self._times, self._pending_bytes = [], [], [], 0
        return self._committed_end

    def _plan_rolls(self, active: Segment) -> list[tuple[Segment, int, int]]:
        """Split the buffer over segments so no record spans two files."""
        plan, seg, start, size = [], active, 0, active.size
        for k, rec_bytes in enumerate(self._sizes):
            if size and size + rec_bytes > self._segment_bytes:
                plan.append((seg, start, k))
                seg, start, size = self._new_segment(self._committed_end + k), k, 0
            size += rec_bytes
        plan.append((seg, start, len(self._sizes)))
        return [step for step in plan if step[2] > step[1]]

    def drop_before(self, position: int) -> int:
        """Delete every closed segment whose records all lie below ``position``.

        "first" is made durable in meta.json before any file goes, so a crash in
        between leaves files that recovery deletes, never a log that starts later
        than it says. The active segment is never deleted.

        Returns:
            How many bytes were freed.
        """
        self._require_open()
        doomed = 0
        while doomed < len(self._segments) - 1 and self._segments[doomed + 1].base <= position:
            doomed += 1
        if not doomed:
            return 0
        self._first = self._segments[doomed].base
        self._write_meta(self.log_id)
        freed = 0
        for seg in self._segments[:doomed]:
            freed += seg.size
            os.close(seg.fd)
            seg.path.unlink()
        fsync_path(self._dir)
        del self._segments[:doomed], self._bases[:doomed], self._first_times[:doomed]
        self._hints.clear()
        return freed

    def segment_extents(self) -> list[tuple[int, int, int]]:
        """(first position, bytes, first time_ms or 0) of each segment, oldest first."""
        times = self._first_times + [0] * (len(self._segments) - len(self._first_times))
        return [
            (seg.base, seg.size, times[k] if seg.count else 0)
            for k, seg in enumerate(self._segments)
        ]

    def discard(self) -> int:
        """Drop every buffered record, e.g. after a failed commit whose producers were
        told no: a later commit must not make them durable after all.

        Returns:
            How many records were dropped; ``end`` is back at ``committed_end``.
        """
        dropped = len(self._sizes)
        self._parts, self._sizes, self._times, self._pending_bytes = [], [], [], 0
        return dropped

    def _rollback(self, active: Segment, known: int) -> None:
        """Undo a failed commit on disk; the buffer stays for a retry."""
        logger.warning("log %s: commit failed, rolling back", self._dir)
        for seg in self._segments[known:]:
            os.close(seg.fd)
            seg.path.unlink(missing_ok=True)
        del self._segments[known:], self._bases[known:]
        os.ftruncate(active.fd, active.size)

    def _index(self, seg: Segment, a: int, b: int) -> None:
        """Account records ``a:b`` of the buffer as committed into ``seg``."""
        sizes, times, pos0 = self._sizes, self._times, self._committed_end
        if seg.count == 0:
            self._first_times.append(times[a])
        first = a + (-seg.count) % INDEX_EVERY_RECORDS
        offset, done = seg.size, a
        for k in range(first, b, INDEX_EVERY_RECORDS):
            offset += sum(sizes[done:k])
            done = k
            seg.add_index(pos0 + k, offset, times[k])
        seg.size += sum(sizes[a:b])
        seg.count += b - a

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

    # -- closing ----------------------------------------------------------------

    def close(self) -> None:
        """Commit what is buffered and release file descriptors; idempotent."""
        if not self._open:
            return
        try:
            self.commit()
        finally:
            self._open = False
            self._release()

    def _release(self) -> None:
        for seg in self._segments:
            if seg.fd >= 0:
                os.close(seg.fd)
        self._segments, self._bases, self._first_times, self._hints = [], [], [], {}

    def _require_open(self) -> None:
        if not self._open:
            raise RuntimeError("log is not open")
