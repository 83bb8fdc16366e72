"""The compact GradeTable against the dict-of-lists model (tests/grades/reference_table.py).

A 200k-row table is built change by change beside the reference, then backed up
through the real encoder and restored through the real reader into fresh and
half-filled tables: every answer and every row must be the reference's. The
backup's bytes are checked against the format as written row by row, and the
table's memory per user against the 200-byte budget.
"""

from __future__ import annotations

import gzip
import io
import random
import tracemalloc
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.grades.backup import BackupEncoder, read_backup, read_backup_blocks
from actors.grades.backup_packed import PackedEncoder, read_packed_blocks
from actors.grades.records import FIELDS, INT64_MAX, INT64_MIN, GradeTable, unpack_rows
from tests.grades.reference_table import ReferenceTable

ROWS = 200_000
CHUNK_ROWS = 20_000  # as the getter asks the storage actor
BYTES_PER_USER = 200
META = {
    "generated_at_ms": 1_790_000_000_123,
    "position": 77,
    "log_id": "ab12",
    "replica_id": 1,
    "hlc": 1 << 40,
    "rows": ROWS,
}


def only(field: str, value: int) -> list:
    values = [None] * len(FIELDS)
    values[FIELDS.index(field)] = value
    return values


def changes(seed: int, count: int, keys: int) -> list[tuple[str, int, int, list]]:
    """Every key at least once (count >= keys), mostly full writes, a fifth partial,
    stamps that collide, some changes delivered twice."""
    rng = random.Random(seed)
    stamp_base = 1_790_000_000_000 << 12
    picks = list(range(keys))
    rng.shuffle(picks)
    picks += [rng.randrange(keys) for _ in range(count - keys)]
    out = []
    for key in picks:
        if rng.random() < 0.8:
            values = [rng.randrange(-(10**6), 10**6) for _ in FIELDS]
        else:
            values = [rng.choice([None, None, rng.randrange(INT64_MIN, INT64_MAX)]) for _ in FIELDS]
        out.append((str(key), stamp_base + rng.randrange(50_000), rng.randint(1, 3), values))
    out += rng.sample(out, count // 20)
    return out


def backup(table: GradeTable, encoder: BackupEncoder | PackedEncoder | None = None) -> bytes:
    """What GET /backup sends: the table's keys and packed rows, chunk by chunk."""
    encoder, keys = encoder or BackupEncoder(), table.keys()
    parts = [encoder.header(META)]
    for start in range(0, len(keys), CHUNK_ROWS):
        chunk = keys[start : start + CHUNK_ROWS]
        parts.append(encoder.columns(chunk, table.packed_rows(start, start + len(chunk))))
    return b"".join([*parts, encoder.finish()])


def restore(data: bytes, table: GradeTable, read=read_backup_blocks) -> None:
    """What a restoring storage actor does with a backup's blocks."""
    _meta, blocks = read(io.BytesIO(data))
    for block in blocks:
        table.load(block.keys, block.values, block.versions)


FORMATS = {
    "csv": (BackupEncoder, read_backup_blocks),
    "packed": (PackedEncoder, read_packed_blocks),
}
"""The two forms of GET /backup: the gzip'd CSV, and the packed one a restoring replica asks for."""


@pytest.fixture(scope="module")
def built() -> tuple[GradeTable, ReferenceTable]:
    table, reference = GradeTable(), ReferenceTable()
    for key, stamp, replica_id, values in changes(1, ROWS * 3 // 2, ROWS):
        assert table.merge(key, stamp, replica_id, values) == reference.merge(
            key, stamp, replica_id, values
        )
    return table, reference


def test_a_large_table_answers_every_get_as_the_reference(built):
    table, reference = built

    assert len(table) == len(reference.rows) == ROWS
    assert table.keys() == list(reference.rows)
    for key, row in reference.rows.items():
        assert table.get(key) == row
        assert table.record(key) == [key, *row[:4]]
    assert table.get("not-a-key") is None


def test_a_large_tables_backup_is_the_reference_written_row_by_row(built):
    table, reference = built

    text = gzip.decompress(backup(table)).decode()

    lines = text.split("\r\n")
    assert lines[2:-1] == [",".join([key, *map(str, row)]) for key, row in reference.rows.items()]
    _meta, batches = read_backup(io.BytesIO(backup(table)))
    assert {key: row for batch in batches for key, row in batch} == reference.rows


@pytest.mark.parametrize("form", FORMATS)
def test_a_large_backup_restores_into_an_empty_table_as_the_reference(built, form):
    table, reference = built
    restored = GradeTable()
    encoder, read = FORMATS[form]

    restore(backup(table, encoder()), restored, read)

    assert dict(restored.items()) == reference.rows
    assert restored.keys() == list(reference.rows)


@pytest.mark.parametrize("form", FORMATS)
def test_a_large_backup_restores_over_a_half_filled_table_as_merging_both(built, form):
    table, reference = built
    encoder, read = FORMATS[form]
    target, expected = GradeTable(), ReferenceTable()
    for key, stamp, replica_id, values in changes(2, ROWS // 2, ROWS // 4):
        target.merge(key, stamp, replica_id, values)
        expected.merge(key, stamp, replica_id, values)

    restore(backup(table, encoder()), target, read)
    for key, row in reference.rows.items():
        expected.merge_row(key, row)

    assert dict(target.items()) == expected.rows
    # then the log replays on top: the same changes again change nothing
    for key, stamp, replica_id, values in changes(1, 2_000, 1_000):
        assert target.merge(key, stamp, replica_id, values) == expected.merge(
            key, stamp, replica_id, values
        )


def test_a_table_of_full_writes_keeps_under_200_bytes_a_user():
    stamp = 1_790_000_000_000 << 12
    tracemalloc.start()
    try:
        table = GradeTable()
        for i in range(ROWS):  # the keys are made here: the table keeps them
            table.merge(str(i), stamp + i, 1, [i, i + 1, i + 2, i + 3])
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()

    assert len(table) == ROWS
    assert size / ROWS <= BYTES_PER_USER, f"{size / ROWS:.0f} bytes a user"


# --- bulk load and packed rows --------------------------------------------------------


def test_load_of_new_keys_with_shared_versions_then_packed_rows_round_trip():
    table = GradeTable()
    table.merge("old", 1, 1, [9, 9, 9, 9])

    table.load(["a", "b"], array("q", [1, 2, 3, 4, 5, 6, 7, 8]), array("q", [10, 20]))

    assert table.keys() == ["old", "a", "b"]
    assert unpack_rows(table.packed_rows(1, 3)).tolist() == [1, 2, 3, 4, 10, 10, 10, 10] + [
        5,
        6,
        7,
        8,
        20,
        20,
        20,
        20,
    ]


def test_load_merges_known_keys_field_by_field():
    table = GradeTable()
    table.merge_row("a", [1, 1, 1, 1, 5, 5, 5, 5])

    table.load(["a"], array("q", [2, 2, 2, 2]), array("q", [4, 6, 5, 7]))

    assert table.get("a") == [1, 2, 1, 2, 5, 6, 5, 7]


def test_load_with_a_key_twice_keeps_slots_in_key_order():
    table = GradeTable()

    table.load(["a", "b", "a"], array("q", range(12)), array("q", [1, 2, 3]))

    assert table.keys() == ["a", "b"]
    assert table.get("a") == [8, 9, 10, 11, 3, 3, 3, 3]
    assert unpack_rows(table.packed_rows(0, 2)).tolist() == table.get("a") + table.get("b")


def test_a_bulk_load_meeting_a_held_key_leaves_every_slot_right():
    """Keys go in without a membership test first; one held already must be put back."""
    table, reference = GradeTable(), ReferenceTable()
    for key, row in [("x", [1, 1, 1, 1, 5, 5, 5, 5]), ("y", [2, 2, 2, 2, 5, 6, 5, 5])]:
        table.merge_row(key, row)
        reference.merge_row(key, row)
    loads = [
        (["n1", "y", "n2"], list(range(12)), [9, 9, 9, 9, 4, 7, 4, 4, 3, 3, 3, 1]),
        (["n3", "n1"], list(range(20, 28)), [8, 8, 8, 8, 1, 1, 1, 1]),
        (["n4"], [7, 7, 7, 7], [2, 2, 2, 3]),
    ]
    for keys, values, versions in loads:
        table.load(keys, array("q", values), array("q", versions))
        for i, key in enumerate(keys):
            reference.merge_row(key, values[4 * i : 4 * i + 4] + versions[4 * i : 4 * i + 4])

    assert table.keys() == list(reference.rows) == ["x", "y", "n1", "n2", "n3", "n4"]
    assert dict(table.items()) == reference.rows
    rows = unpack_rows(table.packed_rows(0, len(table))).tolist()
    assert rows == [cell for key in table.keys() for cell in reference.rows[key]]
    assert table.merge("n2", 1 << 20, 2, [0, None, None, 0]) == reference.merge(
        "n2", 1 << 20, 2, [0, None, None, 0]
    )


def test_a_bulk_load_of_rows_with_split_versions_stores_them_as_merging_would():
    table, reference = GradeTable(), ReferenceTable()
    versions = [3, 3, 3, 3, 1, 2, 3, 4, 5, 5, 5, 5, 0, 0, 9, 0]

    table.load(["a", "b", "c", "d"], array("q", range(16)), array("q", versions))

    for i, key in enumerate(["a", "b", "c", "d"]):
        reference.merge_row(key, list(range(4 * i, 4 * i + 4)) + versions[4 * i : 4 * i + 4])
    assert dict(table.items()) == reference.rows


@pytest.mark.parametrize(
    "values, versions",
    [
        (array("q", [1, 2, 3]), array("q", [1])),
        (array("q", [1, 2, 3, 4]), array("q", [1, 2])),
        (array("q", [1, 2, 3, 4]), array("q", [-1])),
    ],
)
def test_load_rejects_bad_columns_and_changes_nothing(values, versions):
    table = GradeTable()

    with pytest.raises(ValueError):
        table.load(["a"], values, versions)

    assert len(table) == 0


def test_packed_rows_expand_split_versions():
    table = GradeTable()
    table.merge("a", 100, 1, [1, 2, 3, 4])
    table.merge("b", 100, 1, only("spp", 5))
    table.merge("c", 100, 1, [6, 7, 8, 9])

    rows = unpack_rows(table.packed_rows(0, 10)).tolist()

    assert rows == table.get("a") + table.get("b") + table.get("c")
    assert table.packed_rows(3, 10) == b""


# --- backup and restore of any table ---------------------------------------------------

value = st.one_of(st.none(), st.integers(INT64_MIN, INT64_MAX), st.sampled_from([0, -1, 1]))
change = st.tuples(
    st.sampled_from(["a", "b", "c", "ü", "comma,key", 'quo"te']),
    st.integers(1, 50),
    st.integers(1, 3),
    st.lists(value, min_size=len(FIELDS), max_size=len(FIELDS)),
)


@settings(max_examples=100, deadline=None)
@given(source_changes=st.lists(change, max_size=40), target_changes=st.lists(change, max_size=20))
def test_backup_then_restore_matches_the_reference_model(source_changes, target_changes):
    source, reference = GradeTable(), ReferenceTable()
    targets = {form: GradeTable() for form in FORMATS}
    for key, stamp, replica_id, values in source_changes:
        source.merge(key, stamp, replica_id, values)
    for key, stamp, replica_id, values in target_changes:
        for target in targets.values():
            target.merge(key, stamp, replica_id, values)
        reference.merge(key, stamp, replica_id, values)

    for form, (encoder, read) in FORMATS.items():
        restore(backup(source, encoder()), targets[form], read)
    for key, row in source.items():
        reference.merge_row(key, row)

    for target in targets.values():
        assert dict(target.items()) == reference.rows
