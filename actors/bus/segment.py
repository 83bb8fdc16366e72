"""The bytes of the bus log: one record's layout, its checksum, a segment's scan.

Record layout (little endian), records packed back to back in a segment::

    +----------+----------+------------------------------------------------+
    | length   | crc32    | body (length bytes)                            |
    | u32      | u32      |                                                |
    +----------+----------+------------------------------------------------+
    body = +----------+---------+---------+------------+--------+--------+
           | position | time_ms | seq     | origin_len | origin | data   |
           | u64      | u64     | u64     | u16        | utf-8  | bytes  |
           +----------+---------+---------+------------+--------+--------+
    crc32 = zlib.crc32(body)

``check_record`` decides whether one record is intact; ``scan`` walks a
segment's bytes to the first one that is not. actors.bus.log builds the log
(segments, group commit, recovery, reads) on these.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import NamedTuple
from zlib import crc32

__all__ = [
    "INDEX_EVERY_RECORDS",
    "MAX_ORIGIN_BYTES",
    "MAX_RECORD_BYTES",
    "HEADER",
    "BODY",
    "HEADER_BYTES",
    "BODY_BYTES",
    "Record",
    "RecoveryReport",
    "LogCorruption",
    "Segment",
    "fsync_path",
    "write_all",
    "check_record",
    "scan",
]

INDEX_EVERY_RECORDS = 256  # sparse index stride, in records, within a segment
MAX_RECORD_BYTES = 64 * 1024 * 1024  # cap on a record body; larger lengths are corruption
MAX_ORIGIN_BYTES = 0xFFFF  # origin_len is a u16
HEADER = struct.Struct("<II")  # length, crc32
BODY = struct.Struct("<QQQH")  # position, time_ms, seq, origin_len
HEADER_BYTES = HEADER.size  # 8
BODY_BYTES = BODY.size  # 26


class Record(NamedTuple):
    """One log entry as handed back to readers."""

    position: int
    time_ms: int
    origin: str
    seq: int
    data: bytes


class RecoveryReport(NamedTuple):
    """What ``Log.open`` found and cut; ``reason`` is empty for a clean log."""

    records: int
    segments: int
    truncated_bytes: int
    removed_segments: int
    reason: str


class LogCorruption(Exception):
    """Unrecoverable misuse (lost identity, files changed under an open log)."""


class Segment:
    """One segment file, its committed extent and its sparse in-memory index."""

    __slots__ = ("base", "count", "fd", "idx_off", "idx_pos", "idx_time", "path", "size")

    def __init__(self, base: int, path: Path, fd: int = -1) -> None:
        self.base, self.path, self.fd, self.size, self.count = base, path, fd, 0, 0
        self.idx_pos: list[int] = []  # every INDEX_EVERY_RECORDS-th position, from base
        self.idx_off: list[int] = []  # its byte offset in the file
        self.idx_time: list[int] = []  # its time_ms

    def add_index(self, position: int, offset: int, time_ms: int) -> None:
        self.idx_pos.append(position)
        self.idx_off.append(offset)
        self.idx_time.append(time_ms)


def fsync_path(path: Path) -> None:
    """Flush a file, or a directory's creations, renames and deletions, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def check_record(buf: bytes, i: int, p: int, last_time: int) -> tuple[int, int, str]:
    """Validate the record at ``buf[i:]`` that should carry position ``p``.

    Returns:
        (its end offset, its time_ms, "") or (0, 0, why it is not intact).
    """
    if len(buf) - i < HEADER_BYTES:
        return 0, 0, "torn record header"
    length, crc = HEADER.unpack_from(buf, i)
    if not BODY_BYTES <= length <= MAX_RECORD_BYTES:
        return 0, 0, f"bad record length {length}"
    end = i + HEADER_BYTES + length
    if end > len(buf):
        return 0, 0, "torn record body"
    if crc32(memoryview(buf)[i + HEADER_BYTES : end]) != crc:
        return 0, 0, "checksum mismatch"
    position, time_ms, _, origin_len = BODY.unpack_from(buf, i + HEADER_BYTES)
    if position != p:
        return 0, 0, f"position {position} where {p} was expected"
    if BODY_BYTES + origin_len > length or time_ms < last_time:
        return 0, 0, "inconsistent record fields"
    return end, time_ms, ""


def scan(buf: bytes, seg: Segment, last_time: int) -> tuple[int, int, str]:
    """Validate ``buf`` record by record, filling ``seg``'s index and count.

    Returns:
        (last time_ms seen, offset past the last intact record, why the scan
        stopped early or "").
    """
    i, p = 0, seg.base
    while i < len(buf):
        end, time_ms, reason = check_record(buf, i, p, last_time)
        if reason:
            break
        if (p - seg.base) % INDEX_EVERY_RECORDS == 0:
            seg.add_index(p, i, time_ms)
        last_time, i, p = time_ms, end, p + 1
    else:
        reason = ""
    seg.count = p - seg.base
    return last_time, i, reason
