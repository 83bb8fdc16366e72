"""The backup file: a gzip'd CSV that a replica restores from.

Lines end with CRLF (RFC 4180). Line 1 holds the metadata, ``key=value``
pairs separated by commas: when the backup was generated and the log
position it was taken at, so a restoring replica knows where to replay the bus
log from. Line 2 names the columns; then one row per user with each field's
value and its last-writer-wins version (``stamp << 10 | replica_id``, see
actors/grades/records.py)::

    generated_at=2026-11-22T14:23:00.123Z,generated_at_ms=...,position=1234,log_id=ab12...,replica_id=1,hlc=...,rows=2,format=grades-backup/1
    user_id,postpaid_limit,spp,shipping_fee,return_fee,postpaid_limit_version,...
    3333,1111,23123,333,444,1866...,1866...,1866...,1866...

Rows may be newer than ``position`` (the snapshot is taken while writes go on);
replaying from ``position`` is still right because merging is idempotent.
"""

from __future__ import annotations

import csv
import datetime
import gzip
import io
import itertools
import re
import zlib
from array import array
from collections.abc import Iterator
from typing import Any, BinaryIO, NamedTuple

from actors.grades.records import (
    FIELDS,
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_BYTES,
    pack_rows,
    unpack_rows,
)

__all__ = [
    "FORMAT",
    "COLUMNS",
    "BackupEncoder",
    "BackupError",
    "Block",
    "Meta",
    "described",
    "keys_ok",
    "read_backup",
    "read_backup_blocks",
    "header_line",
    "parse_header_line",
    "backup_filename",
]

FORMAT = "grades-backup/1"
COLUMNS = ("user_id", *FIELDS, *(f"{name}_version" for name in FIELDS))
GZIP_LEVEL = 1
"""Fast compression: a backup is streamed on demand, CPU matters more than bytes."""
ROWS_PER_BATCH = 10_000
READ_BLOCK_CHARS = 1 << 20
_NEEDS_QUOTES = re.compile(r'[,"\r\n]')
_WIDTH = len(FIELDS)
_INTS = 2 * _WIDTH
"""Ints of a row: four values, four versions."""
_LINE = "%s" + ",%d" * _INTS + "\r\n"

Meta = dict[str, Any]
"""A backup's metadata (line 1): str values, int where the writer wrote ints."""
Row = list[Any]
"""One row as read: [user_id, [4 values, 4 versions]]."""


class BackupError(ValueError):
    """A backup that is not in this format, or is damaged."""


def _iso(ms: int) -> str:
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def described(meta: Meta, form: str = FORMAT) -> Meta:
    """A snapshot's metadata as a backup states it: its time in ISO first, its format last."""
    return {"generated_at": _iso(meta["generated_at_ms"]), **meta, "format": form}


def header_line(meta: Meta) -> str:
    """Line 1 of a backup from a snapshot's metadata."""
    pairs = described(meta)
    return ",".join(f"{key}={value}" for key, value in pairs.items()) + "\r\n"


def parse_header_line(line: str) -> Meta:
    """Metadata from line 1; integers where the writer wrote integers."""
    try:
        meta: Meta = dict(pair.split("=", 1) for pair in line.strip().split(","))
    except ValueError:
        raise BackupError(f"first line is not key=value pairs: {line[:80]!r}") from None
    if meta.get("format") != FORMAT:
        raise BackupError(f"unknown backup format {meta.get('format')!r}, expected {FORMAT}")
    try:
        for key in ("generated_at_ms", "position", "replica_id", "hlc", "rows"):
            meta[key] = int(meta[key])
    except (KeyError, ValueError) as exc:
        raise BackupError(f"first line lacks a valid {exc}") from None
    return meta


def backup_filename(meta: Meta) -> str:
    stamp = _iso(meta["generated_at_ms"]).replace("-", "").replace(":", "").replace(".", "")
    return f"grades-replica{meta['replica_id']}-{stamp}.csv.gz"


class BackupEncoder:
    """Turns metadata and row chunks into gzip bytes, one chunk at a time."""

    def __init__(self, level: int = GZIP_LEVEL) -> None:
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._text = io.StringIO()
        # NOTE: with "\r\n" as terminator the writer quotes any field holding \r or \n;
        # with "\n" alone a user_id with a bare \r would be written unquoted and split.
        self._csv = csv.writer(self._text, lineterminator="\r\n")

    def _take(self) -> bytes:
        data = self._text.getvalue().encode("utf-8", "surrogatepass")
        self._text.seek(0)
        self._text.truncate()
        return self._zip.compress(data)

    def header(self, meta: Meta) -> bytes:
        self._text.write(header_line(meta))
        self._csv.writerow(COLUMNS)
        return self._take()

    def rows(self, rows: list[list[Any]]) -> bytes:
        """Rows as [user_id, 4 values, 4 versions]."""
        return self.columns([row[0] for row in rows], pack_rows([row[1:] for row in rows]))

    def columns(self, keys: list[str], packed: bytes) -> bytes:
        """Rows given as user_ids and their 8 ints each packed (records.pack_rows), in order."""
        return self.compress(self.format(keys, packed))

    def format(self, keys: list[str], packed: bytes) -> bytes:
        """The CSV lines of these rows, uncompressed; pass them to compress() in order.

        Args:
            keys: user_ids.
            packed: their rows, 8 int64s each (records.pack_rows, GradeTable.packed_rows).
        """
        cells = unpack_rows(packed)
        if len(cells) != len(COLUMNS[1:]) * len(keys):
            raise ValueError(f"{len(keys)} user_ids but {len(cells)} ints")
        columns = [cells[i::_INTS] for i in range(_INTS)]
        if _NEEDS_QUOTES.search("".join(keys)):
            self._csv.writerows(zip(keys, *columns))
            text = self._text.getvalue()
            self._text.seek(0)
            self._text.truncate()
        else:
            # NOTE: 3x faster than csv.writer and byte-identical when no user_id needs quotes.
            text = "".join([_LINE % row for row in zip(keys, *columns)])
        return text.encode("utf-8", "surrogatepass")

    def compress(self, data: bytes) -> bytes:
        """Gzip the next piece; zlib lets go of the GIL, so a thread may do this."""
        return self._zip.compress(data)

    def finish(self) -> bytes:
        return self._zip.flush()


class Block(NamedTuple):
    """Rows of a backup as columns, the form GradeTable.load takes in bulk."""

    keys: list[str]
    """user_ids."""
    values: array[int]
    """Four per user_id, FIELDS order."""
    versions: array[int]
    """Four per user_id, or one per user_id when every row here has four equal versions."""

    def rows(self) -> list[Row]:
        """The same rows as [user_id, [4 values, 4 versions]]."""
        shared = len(self.versions) == len(self.keys)
        rows: list[Row] = []
        for i, key in enumerate(self.keys):
            values = self.values[i * _WIDTH : (i + 1) * _WIDTH].tolist()
            if shared:
                versions = [self.versions[i]] * _WIDTH
            else:
                versions = self.versions[i * _WIDTH : (i + 1) * _WIDTH].tolist()
            rows.append([key, values + versions])
        return rows


def _row(fields: list[str], line_no: int) -> Row:
    if len(fields) != len(COLUMNS):
        raise BackupError(f"row {line_no}: {len(fields)} columns, expected {len(COLUMNS)}")
    key = fields[0]
    if not key or (len(key) > MAX_KEY_BYTES // 4 and len(key.encode()) > MAX_KEY_BYTES):
        raise BackupError(f"row {line_no}: bad user_id")
    try:
        ints = list(map(int, fields[1:]))
    except ValueError:
        raise BackupError(f"row {line_no}: a non-integer value") from None
    if not all(INT64_MIN <= i <= INT64_MAX for i in ints):
        raise BackupError(f"row {line_no}: a number out of the signed 64-bit range")
    if min(ints[_WIDTH:]) < 0:
        raise BackupError(f"row {line_no}: a negative version")
    return [key, ints]


def _block_of_rows(rows: list[Row]) -> Block:
    return Block(
        [row[0] for row in rows],
        array("q", [i for row in rows for i in row[1][:_WIDTH]]),
        array("q", [i for row in rows for i in row[1][_WIDTH:]]),
    )


def keys_ok(keys: list[str]) -> bool:
    """Every user_id non-empty and at most MAX_KEY_BYTES (the length check first: it is cheap)."""
    return "" not in keys and (
        max(map(len, keys), default=0) <= MAX_KEY_BYTES // 4
        or all(len(key.encode()) <= MAX_KEY_BYTES for key in keys)
    )


def _fast_block(chunk: str) -> Block | None:
    """Quote-free whole lines as columns, converted all at once (one split, int maps: C loops).

    Where the four version columns hold the same text, only one is parsed: a
    backup of full writes costs 5 int() a row instead of 8. None if anything is off.
    """
    count, width = chunk.count("\n"), len(COLUMNS)
    # NOTE: "\n," makes each line's last field end with its line break, so one split
    # gives every field; int() ignores the "\r\n" or "\n" it carries. Exactly `count`
    # line breaks, each ending a row's 9th field, means every line has 9 fields.
    tokens = chunk.replace("\n", "\n,").split(",")
    if tokens.pop() or len(tokens) != width * count:
        return None
    last = tokens[width - 1 :: width]
    if not all(map(str.endswith, last, itertools.repeat("\n"))):
        return None
    keys = tokens[::width]
    if not keys_ok(keys):
        return None
    value_tokens: list[str] = [""] * (_WIDTH * count)
    for i in range(_WIDTH):
        value_tokens[i::_WIDTH] = tokens[1 + i :: width]
    version_columns = [tokens[1 + _WIDTH + i :: width] for i in range(_WIDTH - 1)]
    version_columns.append(list(map(str.rstrip, last)))
    try:
        values = array("q", map(int, value_tokens))
        if all(column == version_columns[0] for column in version_columns[1:]):
            versions = array("q", map(int, version_columns[0]))
        else:
            version_tokens: list[str] = [""] * (_WIDTH * count)
            for i, column in enumerate(version_columns):
                version_tokens[i::_WIDTH] = column
            versions = array("q", map(int, version_tokens))
    except (ValueError, OverflowError):
        return None
    if versions and min(versions) < 0:
        return None
    return Block(keys, values, versions)


def _block(chunk: str, line_no: int) -> Block:
    """Quote-free whole lines as a Block; line by line to name the first bad line if one is off."""
    block = _fast_block(chunk)
    if block is not None:
        return block
    lines = chunk.replace("\r\n", "\n").split("\n")
    lines.pop()  # after the last line break
    return _block_of_rows([_row(line.split(","), line_no + i) for i, line in enumerate(lines)])


def _blocks(text: io.TextIOBase) -> Iterator[Block]:
    """Blocks of rows after the header: vectorized while no field is quoted, csv after."""
    carry, line_no = "", 3
    while True:
        block = text.read(READ_BLOCK_CHARS)
        if '"' in block:
            # A quoted user_id (it may hold commas or line breaks): the csv module from here.
            rest = itertools.chain(io.StringIO(carry + block, newline=""), text)
            batch: list[Row] = []
            for fields in csv.reader(rest):
                batch.append(_row(fields, line_no))
                line_no += 1
                if len(batch) >= ROWS_PER_BATCH:
                    yield _block_of_rows(batch)
                    batch = []
            if batch:
                yield _block_of_rows(batch)
            return
        chunk = carry + block
        cut = chunk.rfind("\n") + 1
        chunk, carry = chunk[:cut], chunk[cut:]
        if not block and carry:  # a last line without its line break
            chunk, carry = chunk + carry + "\n", ""
        if chunk:
            yield _block(chunk, line_no)
            line_no += chunk.count("\n")
        if not block:
            return


def read_backup_blocks(stream: BinaryIO) -> tuple[Meta, Iterator[Block]]:
    """Parse a backup as it streams in, as column blocks (what a restore loads).

    Args:
        stream: the gzip bytes (a file or an HTTP response).

    Returns:
        (meta, blocks).

    Raises:
        BackupError: from the call or while iterating, on any damage.
    """
    text = io.TextIOWrapper(gzip.GzipFile(fileobj=stream), encoding="utf-8", newline="")
    try:
        meta = parse_header_line(text.readline())
        if tuple(text.readline().rstrip("\r\n").split(",")) != COLUMNS:
            raise BackupError("second line is not the expected column header")
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise BackupError(f"not a gzip'd backup: {exc}") from None

    def blocks() -> Iterator[Block]:
        try:
            yield from _blocks(text)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error, csv.Error) as exc:
            raise BackupError(f"damaged backup: {exc}") from None

    return meta, blocks()


def read_backup(stream: BinaryIO) -> tuple[Meta, Iterator[list[Row]]]:
    """Parse a backup as it streams in, as batches of rows (tools and tests).

    Returns:
        (meta, batches): batches yields lists of [user_id, [8 ints]].

    Raises:
        BackupError: from the call or while iterating, on any damage.
    """
    meta, blocks = read_backup_blocks(stream)
    return meta, (block.rows() for block in blocks)
