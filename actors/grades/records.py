"""The UserGrade map and its merge rule: per-field last-writer-wins.

Each record is a list of 8 ints, the four field values in FIELDS order then
their four versions. A version is ``stamp << REPLICA_BITS | replica_id``: the
hybrid-clock stamp of the write that set the field, ties broken by replica id.
A field never written has version 0. Merging keeps, per field, the value with
the greater version, so applying the same changes in any order, any number of
times, gives the same map: that is what lets replicas converge and lets a
restore replay the log over a backup that already holds part of it.
"""

from __future__ import annotations

__all__ = [
    "FIELDS",
    "REPLICA_BITS",
    "MAX_REPLICA_ID",
    "MAX_KEY_BYTES",
    "INT64_MIN",
    "INT64_MAX",
    "GradeTable",
    "check_change",
]

FIELDS = ("postpaid_limit", "spp", "shipping_fee", "return_fee")
REPLICA_BITS = 10
MAX_REPLICA_ID = (1 << REPLICA_BITS) - 1
MAX_KEY_BYTES = 128
INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


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


class GradeTable:
    """user_id -> record; owned by one storage actor, never shared."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, key: str) -> list[int] | None:
        """The live record list (do not keep it), or None."""
        return self.rows.get(key)

    def merge(self, key: str, stamp: int, replica_id: int, values: list[int | None]) -> list[int]:
        """Apply one change: each present field wins if its version is newer.

        Args:
            key: user_id.
            stamp: hybrid-clock stamp of the write.
            replica_id: replica that accepted the write.
            values: len(FIELDS) items, None for absent.

        Returns:
            The record after the merge (the live list).
        """
        version = stamp << REPLICA_BITS | replica_id
        row = self.rows.get(key)
        if row is None:
            row = self.rows[key] = [0, 0, 0, 0, 0, 0, 0, 0]
        value = values[0]
        if value is not None and version > row[4]:
            row[0] = value
            row[4] = version
        value = values[1]
        if value is not None and version > row[5]:
            row[1] = value
            row[5] = version
        value = values[2]
        if value is not None and version > row[6]:
            row[2] = value
            row[6] = version
        value = values[3]
        if value is not None and version > row[7]:
            row[3] = value
            row[7] = version
        return row

    def merge_row(self, key: str, row: list[int]) -> None:
        """Merge a full record with its versions (from a backup) field by field."""
        mine = self.rows.get(key)
        if mine is None:
            self.rows[key] = row
            return
        for i in range(len(FIELDS)):
            if row[4 + i] > mine[4 + i]:
                mine[i] = row[i]
                mine[4 + i] = row[4 + i]
