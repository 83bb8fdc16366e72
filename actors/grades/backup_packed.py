"""The packed backup: the same rows as the gzip'd CSV, in the form a restoring replica loads.

A replica restoring from a peer asks ``GET /backup`` with ``Accept: MEDIA_TYPE``;
anyone else (curl, a browser, a tool) gets the gzip'd CSV the contract names
(actors.grades.backup). Why a second form: the CSV costs the restoring replica
more CPU to inflate and parse than its peer spends to make it, so a restore
could not keep pace with the backup; this form is what both sides hold anyway
(user_ids as strings, int64 columns as GradeTable keeps and loads them), so
neither side formats or parses a number, and the restoring side, the slower
one, does not even rearrange them. Same content, same order, same metadata:
only the encoding differs.

The stream is a sequence of msgpack objects::

    {"generated_at": "2026-...Z", "generated_at_ms": ..., "position": ..., ..., "format": FORMAT}
    [[user_id, ...], values, versions]   # many frames; little-endian int64s:
        # values: four per user_id (FIELDS order);
        # versions: one per user_id when each row's four fields share their version
        # (a frame of full writes), else four per user_id
    total_rows                           # the end: an int, the count of rows sent

A stream that ends before ``total_rows``, or whose count disagrees, is damaged.
Not compressed: a replica restores from a peer on its own network, where
deflating and inflating cost more time than the bytes they save.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator
from typing import Any, BinaryIO

import msgpack

from actors.grades.backup import BackupError, Block, Meta, described, keys_ok
from actors.grades.records import FIELDS, unpack_rows

__all__ = ["FORMAT", "MEDIA_TYPE", "PackedEncoder", "read_packed_blocks"]

FORMAT = "grades-backup-packed/1"
MEDIA_TYPE = "application/vnd.grades.backup+msgpack"
READ_BYTES = 1 << 20
MAX_FRAME_BYTES = 64 << 20
"""Far above a frame of SNAPSHOT_MAX_ROWS rows (~3 MB): a bound against a bogus length."""
_WIDTH = len(FIELDS)
_ROW = 2 * _WIDTH
_ROW_BYTES = 8 * _ROW
_META_INTS = ("generated_at_ms", "position", "replica_id", "hlc", "rows")
_SWAP = sys.byteorder != "little"


class PackedEncoder:
    """Metadata, row chunks and the end marker as msgpack bytes, one piece at a time."""

    def __init__(self) -> None:
        self.rows = 0

    def header(self, meta: Meta) -> bytes:
        return msgpack.packb(described(meta, FORMAT))

    def columns(self, keys: list[str], packed: bytes) -> bytes:
        """Rows given as user_ids and their 8 int64s each (GradeTable.packed_rows)."""
        if len(packed) != _ROW_BYTES * len(keys):
            raise ValueError(f"{len(keys)} user_ids but {len(packed)} bytes of rows")
        cells, count = unpack_rows(packed), len(keys)
        values = array("q", bytes(8 * _WIDTH * count))
        for i in range(_WIDTH):
            values[i::_WIDTH] = cells[i::_ROW]
        versions = cells[_WIDTH::_ROW]
        if any(cells[_WIDTH + i :: _ROW] != versions for i in range(1, _WIDTH)):
            versions = array("q", bytes(8 * _WIDTH * count))
            for i in range(_WIDTH):
                versions[i::_WIDTH] = cells[_WIDTH + i :: _ROW]
        if _SWAP:
            values.byteswap()
            versions.byteswap()
        self.rows += count
        return msgpack.packb([keys, values.tobytes(), versions.tobytes()])

    def finish(self) -> bytes:
        return msgpack.packb(self.rows)


def _meta(obj: Any) -> Meta:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        found = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise BackupError(f"unknown backup format {found!r}, expected {FORMAT}")
    for key in _META_INTS:
        if type(obj.get(key)) is not int:
            raise BackupError(f"metadata lacks a valid {key!r}")
    for key in ("log_id", "generated_at"):
        if not isinstance(obj.get(key), str):
            raise BackupError(f"metadata lacks a valid {key!r}")
    return obj


def _column(data: bytes) -> array[int]:
    column = array("q")
    column.frombytes(data)
    if _SWAP:
        column.byteswap()
    return column


def _block(obj: Any, first_row: int) -> Block:
    """One frame as a Block, checked."""
    if not (
        isinstance(obj, list)
        and len(obj) == 3
        and isinstance(obj[1], bytes)
        and isinstance(obj[2], bytes)
    ):
        raise BackupError(f"rows from {first_row}: not a [user_ids, values, versions] frame")
    keys, values, versions = obj
    if not isinstance(keys, list) or not set(map(type, keys)) <= {str}:
        raise BackupError(f"rows from {first_row}: user_ids that are not strings")
    count = len(keys)
    if len(values) != 8 * _WIDTH * count or len(versions) not in (8 * count, 8 * _WIDTH * count):
        raise BackupError(
            f"rows from {first_row}: {count} user_ids, {len(values)} bytes of values "
            f"and {len(versions)} of versions"
        )
    if not keys_ok(keys):
        raise BackupError(f"rows from {first_row}: an empty or too long user_id")
    block = Block(keys, _column(values), _column(versions))
    if count and min(block.versions) < 0:
        raise BackupError(f"rows from {first_row}: a negative version")
    return block


def read_packed_blocks(stream: BinaryIO) -> tuple[Meta, Iterator[Block]]:
    """Parse a packed backup as it streams in, as column blocks.

    Returns:
        (meta, blocks), meta as the CSV's line 1 gives it.

    Raises:
        BackupError: from the call or while iterating, on any damage (a cut
            stream included: it lacks the end marker).
    """
    unpacker = msgpack.Unpacker(
        stream, read_size=READ_BYTES, max_buffer_size=MAX_FRAME_BYTES, raw=False
    )
    try:
        meta = _meta(next(unpacker))
    except StopIteration:
        raise BackupError("an empty packed backup") from None
    except (ValueError, msgpack.UnpackException) as exc:
        raise BackupError(f"not a packed backup: {exc}") from None

    def blocks() -> Iterator[Block]:
        rows = 0
        try:
            for obj in unpacker:
                if type(obj) is int:
                    if obj != rows:
                        raise BackupError(f"the backup ends after {rows} rows, says {obj}")
                    return
                block = _block(obj, rows + 1)
                rows += len(block.keys)
                yield block
        except (ValueError, msgpack.UnpackException) as exc:
            if isinstance(exc, BackupError):
                raise
            raise BackupError(f"damaged packed backup: {exc}") from None
        raise BackupError(f"the backup was cut after {rows} rows")

    return meta, blocks()
