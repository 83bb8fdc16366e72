"""Reading the files ``grades load`` accepts, as rows ready to POST to /set.

Two shapes, each plain or gzip'd (recognised by the gzip magic bytes):

- a backup (actors/backup.py): line 1 is the ``generated_at=...`` header,
  line 2 the exact backup columns; the versions are ignored;
- a CSV whose header names ``user_id`` and any of the four fields (and, ignored,
  any ``<field>_version``). An empty cell means "field absent": that field is
  left as it is on the replica.

A bad header is an InputError before anything is sent; a bad row is an
InputError naming its line when the reader reaches it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from actors.grades.backup import COLUMNS, BackupError, parse_header_line
from actors.grades.records import FIELDS, INT64_MAX, INT64_MIN, MAX_KEY_BYTES
from actors.grades.tools.outcome import ToolError

__all__ = ["InputError", "Row", "RowFile"]

GZIP_MAGIC = b"\x1f\x8b"
BACKUP_HEADER_PREFIX = "generated_at="
VERSION_SUFFIX = "_version"
KEY_COLUMN = "user_id"
INTEGER = re.compile(r"[+-]?[0-9]+")
"""Plain ASCII decimal: int() alone would also take "1_000" and non-ASCII digits."""


class InputError(ToolError):
    """The input file is not something ``grades load`` can read."""


@dataclass(frozen=True)
class Row:
    """One record to send."""

    line: int
    """Line of the file the row ends on (1-based), for error messages."""
    user_id: str
    body: bytes
    """The JSON body of its POST /set."""


def _open_text(path: Path) -> TextIO:
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(len(GZIP_MAGIC)) == GZIP_MAGIC
        # the caller owns the stream: RowFile closes it
        raw = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    return io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")


def _field_columns(header: list[str]) -> list[tuple[int, str]]:
    """(index, field) of each value column; checks the header."""
    names = [name.strip() for name in header]
    if KEY_COLUMN not in names:
        raise InputError(f"the header has no {KEY_COLUMN} column: {header[:10]}")
    unknown = [
        n
        for n in names
        if n != KEY_COLUMN
        and n not in FIELDS
        and not (n.endswith(VERSION_SUFFIX) and n[: -len(VERSION_SUFFIX)] in FIELDS)
    ]
    if unknown:
        raise InputError(
            f"unknown column(s) {unknown}: expected {KEY_COLUMN} and any of {', '.join(FIELDS)}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"a column is named twice in the header: {header}")
    return [(i, name) for i, name in enumerate(names) if name in FIELDS]


def _value(cell: str, field: str, line: int) -> int | None:
    cell = cell.strip()
    if not cell:
        return None
    if not INTEGER.fullmatch(cell):
        raise InputError(f"line {line}: {field}: {cell[:40]!r} is not an integer")
    value = int(cell)
    if not INT64_MIN <= value <= INT64_MAX:
        raise InputError(f"line {line}: {field}: {value} is out of the signed 64-bit range")
    return value


def _row(
    cells: list[str], key_index: int, fields: list[tuple[int, str]], width: int, line: int
) -> Row:
    if len(cells) != width:
        raise InputError(f"line {line}: {len(cells)} columns, the header has {width}")
    user_id = cells[key_index]
    if not user_id or len(user_id.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InputError(f"line {line}: user_id must be 1..{MAX_KEY_BYTES} UTF-8 bytes")
    record: dict[str, Any] = {KEY_COLUMN: user_id}
    for index, field in fields:
        value = _value(cells[index], field, line)
        if value is not None:
            record[field] = value
    return Row(line, user_id, json.dumps(record, separators=(",", ":")).encode())


class RowFile:
    """An open input file: its kind and its rows, read lazily."""

    def __init__(self, path: str | Path):
        """Open the file and read its header(s).

        Raises:
            InputError: unreadable, or the header is not one ``load`` accepts.
        """
        self.path = Path(path)
        self._text = _open_text(self.path)
        try:
            self.meta, self._header, self._header_lines = self._read_headers()
            self._fields = _field_columns(self._header)
        except BaseException:
            self.close()
            raise

    def _read_headers(self) -> tuple[dict[str, Any] | None, list[str], int]:
        try:
            first = self._text.readline()
            meta = None
            if first.startswith(BACKUP_HEADER_PREFIX):
                meta = self._backup_meta(first)
                first = self._text.readline()
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise InputError(f"{self.path}: cannot read it: {exc}") from None
        header = next(csv.reader([first]), [])
        if meta is not None and tuple(header) != COLUMNS:
            raise InputError(f"{self.path}: line 2 is not the backup column header")
        return meta, header, 1 if meta is None else 2

    @property
    def kind(self) -> str:
        """``backup`` or ``csv``."""
        return "backup" if self.meta is not None else "csv"

    @property
    def fields(self) -> list[str]:
        """The value columns the file provides."""
        return [field for _, field in self._fields]

    def _backup_meta(self, line: str) -> dict[str, Any]:
        try:
            return parse_header_line(line)
        except BackupError as exc:
            raise InputError(f"{self.path}: line 1: {exc}") from None

    def rows(self) -> Iterator[Row]:
        """The rows in file order.

        Raises:
            InputError: while iterating, naming the line of a bad row.
        """
        reader = csv.reader(self._text)
        key_index = [name.strip() for name in self._header].index(KEY_COLUMN)
        width = len(self._header)
        try:
            for cells in reader:
                line = self._header_lines + reader.line_num
                if not cells:
                    continue
                yield _row(cells, key_index, self._fields, width, line)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error, csv.Error) as exc:
            raise InputError(
                f"{self.path}: damaged after line {self._header_lines + reader.line_num}: {exc}"
            ) from None

    def close(self) -> None:
        self._text.close()

    def __enter__(self) -> RowFile:  # noqa: PYI034
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
