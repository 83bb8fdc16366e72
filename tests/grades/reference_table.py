"""The UserGrade map as it was first written, a dict of 8-int lists: the reference model.

GradeTable (actors/grades/records.py) holds the same map in columns to use less than
half the memory; the tests hold it to this model's semantics, change by change:
per-field last-writer-wins on ``stamp << REPLICA_BITS | replica_id``, ties broken by
replica id, 0 for a field never written, merge_row field by field.
"""

from __future__ import annotations

from actors.grades.records import FIELDS, REPLICA_BITS

__all__ = ["ReferenceTable"]


class ReferenceTable:
    """user_id -> [4 values, 4 versions]."""

    def __init__(self) -> None:
        self.rows: dict[str, list[int]] = {}

    def get(self, key: str) -> list[int] | None:
        row = self.rows.get(key)
        return None if row is None else list(row)

    def merge(self, key: str, stamp: int, replica_id: int, values: list[int | None]) -> list:
        """Apply one change; [key, the four values after it]."""
        version = stamp << REPLICA_BITS | replica_id
        row = self.rows.setdefault(key, [0] * 2 * len(FIELDS))
        for i, value in enumerate(values):
            if value is not None and version > row[4 + i]:
                row[i] = value
                row[4 + i] = version
        return [key, *row[:4]]

    def merge_row(self, key: str, row: list[int]) -> None:
        mine = self.rows.get(key)
        if mine is None:
            self.rows[key] = list(row)
            return
        for i in range(len(FIELDS)):
            if row[4 + i] > mine[4 + i]:
                mine[i] = row[i]
                mine[4 + i] = row[4 + i]
