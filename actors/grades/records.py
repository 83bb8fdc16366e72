"""The UserGrade map and its merge rule: per-field last-writer-wins.

A record is the four field values in FIELDS order and their four versions. A
version is ``stamp << REPLICA_BITS | replica_id``: the hybrid-clock stamp of the
write that set the field, ties broken by replica id. A field never written has
version 0. Merging keeps, per field, the value with the greater version, so
applying the same changes in any order, any number of times, gives the same map:
that is what lets replicas converge and lets a restore replay the log over a
backup that already holds part of it.

How the map is held (~165 bytes a user, against ~400 for a dict of 8-int lists):

- ``_slots``: user_id -> slot, a dict of str to int. Slots are handed out in
  insertion order and never freed (no record is ever deleted), so the dict's
  own order lists the keys by slot: ``keys()`` is the snapshot's key list.
- ``_values``: ``array('q')``, four int64 per slot.
- ``_versions``: ``array('q')``, one per slot: the version the row's four
  fields share (a write that sets all four, as almost every write does), or
  ``-1 - i`` once they differ, the four versions then being ``_split[4i:4i+4]``.
  A write that sets all four fields newer than each makes the row share its
  version again and frees its four (``_free``, reused by the next split), so
  only rows whose fields differ now cost 8 bytes more than four version
  columns would. Versions are >= 0, which leaves the negative numbers free for
  that mark.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "FIELDS",
    "REPLICA_BITS",
    "MAX_REPLICA_ID",
    "MAX_KEY_BYTES",
    "INT64_MIN",
    "INT64_MAX",
    "GradeTable",
    "check_change",
    "pack_rows",
    "unpack_rows",
]

FIELDS = ("postpaid_limit", "spp", "shipping_fee", "return_fee")
REPLICA_BITS = 10
MAX_REPLICA_ID = (1 << REPLICA_BITS) - 1
MAX_KEY_BYTES = 128
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
_WIDTH = len(FIELDS)
_ROW = 2 * _WIDTH
"""Ints of a full row: four values, four versions (the backup's and SnapshotNext's form)."""


def check_change(key: object, values: object) -> str | None:
    """Why a change is invalid, or None; the storage actor's last line of defence.

    Args:
        key: user_id.
        values: list of len(FIELDS) items, each an int in int64 range or None.
    """
    if not isinstance(key, str) or not key:
        return "user_id: must be a non-empty string"
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        return f"user_id: longer than {MAX_KEY_BYTES} bytes"
    if not isinstance(values, list) or len(values) != len(FIELDS):
        return f"values: expected a list of {len(FIELDS)}"
    for name, value in zip(FIELDS, values):
        if value is None:
            continue
        if type(value) is not int:
            return f"{name}: must be an integer"
        if not INT64_MIN <= value <= INT64_MAX:
            return f"{name}: out of the signed 64-bit range"
    return None


def pack_rows(rows: Sequence[Sequence[int]]) -> bytes:
    """Full rows (4 values, 4 versions each) as int64s in this machine's byte order."""
    return array("q", [cell for row in rows for cell in row]).tobytes()


def unpack_rows(packed: bytes) -> array[int]:
    """The int64s of pack_rows() or GradeTable.packed_rows(), eight a row."""
    cells = array("q")
    cells.frombytes(packed)
    return cells


class GradeTable:
    """user_id -> record; owned by one storage actor, never shared."""

    def __init__(self) -> None:
        self._slots: dict[str, int] = {}
        self._values = array("q")
        self._versions = array("q")
        self._split = array("q")
        self._free: list[int] = []  # indexes into _split of four versions no row uses
        self._overlapped = False  # a bulk load met a key held already: check keys first

    def __len__(self) -> int:
        return len(self._slots)

    def keys(self) -> list[str]:
        """Every user_id, in slot order: ``packed_rows(i, j)`` holds keys()[i:j]'s rows."""
        return list(self._slots)

    def record(self, key: str) -> list[Any] | None:
        """[user_id, its four field values] as a Get answers it, or None."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        cells, base = self._values, slot << 2  # four values a slot
        return [key, cells[base], cells[base + 1], cells[base + 2], cells[base + 3]]

    def get(self, key: str) -> list[int] | None:
        """The record as 8 ints, four values then their versions (a copy), or None."""
        slot = self._slots.get(key)
        if slot is None:
            return None
        base = slot * _WIDTH
        return self._values[base : base + _WIDTH].tolist() + self._row_versions(slot)

    def items(self) -> Iterator[tuple[str, list[int]]]:
        """(user_id, 8 ints) for every record, in slot order."""
        for key in self._slots:
            row = self.get(key)
            assert row is not None
            yield key, row

    def _row_versions(self, slot: int) -> list[int]:
        version = self._versions[slot]
        if version >= 0:
            return [version] * _WIDTH
        first = (-1 - version) * _WIDTH
        return self._split[first : first + _WIDTH].tolist()

    def _take_split(self, versions: list[int]) -> int:
        """Store four versions for a row of its own; their index in _split."""
        four = array("q", versions)  # an out-of-range version raises before any change
        if self._free:
            first = self._free.pop()
            self._split[first : first + _WIDTH] = four
        else:
            first = len(self._split)
            self._split.extend(four)
        return first

    def _split_row(self, slot: int, version: int) -> int:
        """Give a row with shared version its own four versions; their index in _split."""
        first = self._take_split([version] * _WIDTH)
        self._versions[slot] = -1 - first // _WIDTH
        return first

    def merge(self, key: str, stamp: int, replica_id: int, values: list[int | None]) -> list[Any]:
        """Apply one change: each present field wins if its version is newer.

        Args:
            key: user_id.
            stamp: hybrid-clock stamp of the write.
            replica_id: replica that accepted the write.
            values: len(FIELDS) items, None for absent, each in int64 range.

        Returns:
            [user_id, its four field values after the merge], as a Set answers it.
        """
        # NOTE: unrolled over the four fields, as the dict-of-lists version was: this is
        # the path of every write, and a loop here costs more than the rest of it.
        version = stamp << REPLICA_BITS | replica_id
        v0, v1, v2, v3 = values
        slot = self._slots.get(key)
        if slot is None:
            if (
                v0 is not None
                and v1 is not None
                and v2 is not None
                and v3 is not None
                and 0 <= version <= INT64_MAX
            ):
                # an out-of-range value raises before any change
                self._values.fromlist([v0, v1, v2, v3])
                self._versions.append(version)
                self._slots[key] = len(self._slots)
                return [key, v0, v1, v2, v3]
            row = [0 if value is None else value for value in values]
            self._append(key, row, [0 if value is None else version for value in values])
            return [key, *row]
        cells, base = self._values, slot << 2  # four values a slot
        shared = self._versions[slot]
        if shared >= 0:
            if version <= shared:  # every field is at least as new already
                return [key, cells[base], cells[base + 1], cells[base + 2], cells[base + 3]]
            if v0 is not None and v1 is not None and v2 is not None and v3 is not None:
                self._versions[slot] = version  # first: it is the one that can overflow
                cells[base] = v0
                cells[base + 1] = v1
                cells[base + 2] = v2
                cells[base + 3] = v3
                return [key, v0, v1, v2, v3]
            if v0 is None and v1 is None and v2 is None and v3 is None:
                return [key, cells[base], cells[base + 1], cells[base + 2], cells[base + 3]]
            first = self._split_row(slot, shared)
        else:
            first = (-1 - shared) << 2
            split = self._split
            if (
                v0 is not None
                and v1 is not None
                and v2 is not None
                and v3 is not None
                and version > split[first]
                and version > split[first + 1]
                and version > split[first + 2]
                and version > split[first + 3]
            ):  # newer than every field: the row shares this version again
                self._versions[slot] = version
                self._free.append(first)
                cells[base] = v0
                cells[base + 1] = v1
                cells[base + 2] = v2
                cells[base + 3] = v3
                return [key, v0, v1, v2, v3]
        split = self._split
        if v0 is not None and version > split[first]:
            split[first] = version
            cells[base] = v0
        if v1 is not None and version > split[first + 1]:
            split[first + 1] = version
            cells[base + 1] = v1
        if v2 is not None and version > split[first + 2]:
            split[first + 2] = version
            cells[base + 2] = v2
        if v3 is not None and version > split[first + 3]:
            split[first + 3] = version
            cells[base + 3] = v3
        return [key, cells[base], cells[base + 1], cells[base + 2], cells[base + 3]]

    def _append(self, key: str, values: list[int], versions: list[int]) -> None:
        """A new record; nothing changes if a number is out of range."""
        if min(versions) < 0:
            raise ValueError(f"{key!r}: a negative version")
        self._values.fromlist(values)  # an out-of-range value raises before any change
        try:
            if versions.count(versions[0]) == _WIDTH:
                self._versions.append(versions[0])
            else:
                self._versions.append(-1 - self._take_split(versions) // _WIDTH)
        except OverflowError:
            del self._values[-_WIDTH:]
            raise
        self._slots[key] = len(self._slots)

    def merge_row(self, key: str, row: Sequence[int]) -> None:
        """Merge a full record with its versions (from a backup) field by field."""
        if len(row) != _ROW:
            raise ValueError(f"{key!r}: a row of {len(row)} ints, expected {_ROW}")
        array("q", row)  # an int out of range raises here, before any change
        values, versions = list(row[:_WIDTH]), list(row[_WIDTH:])
        if min(versions) < 0:
            raise ValueError(f"{key!r}: a negative version")
        slot = self._slots.get(key)
        if slot is None:
            self._append(key, values, versions)
            return
        mine = self._row_versions(slot)
        winners = [i for i in range(_WIDTH) if versions[i] > mine[i]]
        if not winners:
            return
        merged = list(map(max, versions, mine))
        base = slot * _WIDTH
        for i in winners:
            self._values[base + i] = values[i]
        shared = self._versions[slot]
        if merged.count(merged[0]) == _WIDTH:
            if shared < 0:
                self._free.append((-1 - shared) * _WIDTH)
            self._versions[slot] = merged[0]
        elif shared >= 0:
            self._versions[slot] = -1 - self._take_split(merged) // _WIDTH
        else:
            first = (-1 - shared) * _WIDTH
            self._split[first : first + _WIDTH] = array("q", merged)

    def load(self, keys: list[str], values: array[int], versions: array[int]) -> None:
        """Merge rows given as columns, in bulk where they are all new.

        Args:
            keys: user_ids.
            values: four per key, in keys' order.
            versions: four per key, or one per key that the key's four fields share.

        Raises:
            ValueError: columns of mismatched lengths or a negative version
                (nothing of this call is loaded then, or the rows before the bad one).
        """
        count = len(keys)
        if len(values) != _WIDTH * count or len(versions) not in (count, _WIDTH * count):
            raise ValueError("columns of mismatched lengths")
        if not count:
            return
        if min(versions) < 0:
            raise ValueError("a negative version")
        slots, first = self._slots, len(self._slots)
        if self._overlapped and not slots.keys().isdisjoint(keys):
            self._merge_rows(keys, values, versions)
            return
        # NOTE: no membership test first: the map's hash table is the cost of a restore
        # (each probe of 1M keys a cache miss), so the keys go in at once and the length
        # tells whether every one was new, which is the case for a restore into an empty
        # table. If not, _undo_bulk puts the map back and this table checks from then on.
        slots.update(zip(keys, range(first, first + count)))
        if len(slots) != first + count:
            self._undo_bulk(first)
            self._overlapped = True
            self._merge_rows(keys, values, versions)
            return
        self._values.extend(values)
        self._versions.extend(versions if len(versions) == count else self._shared(versions))

    def _undo_bulk(self, first: int) -> None:
        """Back to the ``first`` keys held before a bulk insert that met a key held already
        (or a key twice): the keys it added are the last ones in the map's order, and a
        key it overwrote kept its place there, which is its slot."""
        slots = self._slots
        for key in list(itertools.islice(reversed(slots), len(slots) - first)):
            del slots[key]
        slots.update(zip(list(slots), range(first)))

    def _shared(self, versions: array[int]) -> array[int]:
        """Four versions a row as _versions holds them: the one the four share, or a split."""
        shared, v1, v2, v3 = (versions[i::_WIDTH] for i in range(_WIDTH))
        if shared == v1 and shared == v2 and shared == v3:
            return shared
        for i, four in enumerate(zip(shared, v1, v2, v3)):
            if four.count(four[0]) != _WIDTH:
                shared[i] = -1 - self._take_split(list(four)) // _WIDTH
        return shared

    def _merge_rows(self, keys: list[str], values: array[int], versions: array[int]) -> None:
        shared = len(versions) == len(keys)
        for i, key in enumerate(keys):
            base = i * _WIDTH
            row = values[base : base + _WIDTH].tolist()
            if shared:
                row += [versions[i]] * _WIDTH
            else:
                row += versions[base : base + _WIDTH].tolist()
            self.merge_row(key, row)

    def packed_rows(self, start: int, stop: int) -> bytes:
        """The rows of slots start..stop as 8 int64s each (values, versions); see unpack_rows."""
        stop = min(stop, len(self._slots))
        count = max(0, stop - start)
        rows = array("q", bytes(8 * _ROW * count))
        values = self._values[start * _WIDTH : stop * _WIDTH]
        versions = self._versions[start:stop]
        for i in range(_WIDTH):
            rows[i::_ROW] = values[i::_WIDTH]
            rows[_WIDTH + i :: _ROW] = versions
        if count and min(versions) < 0:
            for row, version in enumerate(versions):
                if version < 0:
                    first = (-1 - version) * _WIDTH
                    at = row * _ROW + _WIDTH
                    rows[at : at + _WIDTH] = self._split[first : first + _WIDTH]
        return rows.tobytes()
