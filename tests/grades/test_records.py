"""Tests for actors.grades.records: per-field last-writer-wins merge and change checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.grades.records import (
    FIELDS,
    INT64_MAX,
    INT64_MIN,
    MAX_KEY_BYTES,
    REPLICA_BITS,
    GradeTable,
    check_change,
)

SPP = FIELDS.index("spp")


def only(field: str, value: int) -> list:
    values = [None] * len(FIELDS)
    values[FIELDS.index(field)] = value
    return values


def version(stamp: int, replica_id: int) -> int:
    return stamp << REPLICA_BITS | replica_id


# --- merge ---------------------------------------------------------------------


def test_new_table_is_empty():
    table = GradeTable()

    assert len(table) == 0
    assert table.get("u") is None


def test_first_set_with_only_spp_leaves_other_fields_zero():
    table = GradeTable()

    row = table.merge("u", 100, 1, only("spp", 23))

    assert row[:4] == [0, 23, 0, 0]
    assert row[4:] == [0, version(100, 1), 0, 0]


def test_field_sent_as_zero_overwrites_the_value():
    table = GradeTable()
    table.merge("u", 100, 1, [5, 6, 7, 8])

    row = table.merge("u", 101, 1, [0, None, 0, None])

    assert row[:4] == [0, 6, 0, 8]


def test_absent_fields_keep_their_values_and_versions():
    table = GradeTable()
    table.merge("u", 100, 1, [5, 6, 7, 8])

    row = table.merge("u", 200, 2, only("shipping_fee", 70))

    assert row == [5, 6, 70, 8] + [version(100, 1)] * 2 + [version(200, 2), version(100, 1)]


def test_newer_stamp_wins_per_field():
    table = GradeTable()
    table.merge("u", 100, 3, [1, 1, 1, 1])

    row = table.merge("u", 101, 1, [2, None, 2, None])

    assert row[:4] == [2, 1, 2, 1]


def test_older_stamp_loses_even_when_applied_later():
    table = GradeTable()
    table.merge("u", 200, 1, [1, 2, 3, 4])

    row = table.merge("u", 199, 3, [9, 9, 9, 9])

    assert row == [1, 2, 3, 4] + [version(200, 1)] * 4


def test_older_stamp_still_sets_fields_that_newer_write_left_absent():
    table = GradeTable()
    table.merge("u", 200, 1, only("spp", 2))

    row = table.merge("u", 100, 1, [9, 9, None, None])

    assert row[:4] == [9, 2, 0, 0]


@pytest.mark.parametrize("first, second", [((1, 10), (2, 20)), ((2, 20), (1, 10))])
def test_equal_stamps_are_broken_by_higher_replica_id(first, second):
    table = GradeTable()
    table.merge("u", 500, first[0], only("spp", first[1]))

    row = table.merge("u", 500, second[0], only("spp", second[1]))

    assert row[SPP] == 20
    assert row[4 + SPP] == version(500, 2)


def test_reapplying_the_same_change_is_a_no_op():
    table = GradeTable()
    table.merge("u", 100, 1, [1, 2, 3, 4])
    before = list(table.get("u"))

    table.merge("u", 100, 1, [1, 2, 3, 4])

    assert table.get("u") == before


def test_merge_returns_the_live_row():
    table = GradeTable()

    row = table.merge("u", 100, 1, only("spp", 1))

    assert row is table.get("u")
    assert table.rows["u"] is row


def test_merge_keeps_int64_extremes():
    table = GradeTable()

    row = table.merge("u", 1, 1, [INT64_MIN, INT64_MAX, -1, 0])

    assert row[:4] == [INT64_MIN, INT64_MAX, -1, 0]


def test_keys_are_independent():
    table = GradeTable()
    table.merge("a", 100, 1, [1, 1, 1, 1])

    table.merge("b", 200, 1, [2, 2, 2, 2])

    assert len(table) == 2
    assert table.get("a")[:4] == [1, 1, 1, 1]


def test_merge_row_inserts_a_row_for_a_new_key():
    table = GradeTable()
    row = [1, 2, 3, 4, 10, 20, 30, 40]

    table.merge_row("u", list(row))

    assert table.get("u") == row


def test_merge_row_keeps_the_newer_version_per_field():
    table = GradeTable()
    table.merge_row("u", [1, 2, 3, 4, 10, 20, 30, 40])

    table.merge_row("u", [9, 9, 9, 9, 11, 19, 30, 41])

    assert table.get("u") == [9, 2, 3, 9, 11, 20, 30, 41]


def test_merge_row_over_merged_changes_matches_merging_the_changes():
    direct = GradeTable()
    direct.merge("u", 100, 1, [1, 2, None, None])
    direct.merge("u", 300, 2, [None, 5, 6, None])
    backup = GradeTable()
    backup.merge("u", 200, 1, [7, 7, 7, 7])

    backup.merge_row("u", list(direct.get("u")))
    direct.merge("u", 200, 1, [7, 7, 7, 7])

    assert backup.rows == direct.rows


# --- convergence ---------------------------------------------------------------

value = st.one_of(st.none(), st.integers(INT64_MIN, INT64_MAX), st.sampled_from([0, -1, 1]))
change = st.tuples(
    st.sampled_from(["a", "b", "c", "ü"]),
    st.integers(1, 50),  # stamp: a small range forces ties broken by replica id
    st.integers(1, 3),  # replica id
    st.lists(value, min_size=len(FIELDS), max_size=len(FIELDS)),
)
# A replica never issues the same (stamp, replica) twice, so distinct changes have
# distinct versions; the same change may still be delivered more than once.
changes = st.lists(change, max_size=40, unique_by=lambda c: (c[1], c[2]))


@settings(max_examples=150, deadline=None)
@given(changes=changes, data=st.data())
def test_any_order_with_duplicates_converges_to_the_same_rows(changes, data):
    first = data.draw(st.permutations(changes), label="first order")
    extra = data.draw(st.lists(st.sampled_from(changes), max_size=10) if changes else st.just([]))
    second = data.draw(st.permutations(changes + extra), label="second order")
    left, right = GradeTable(), GradeTable()

    for key, stamp, replica_id, values in first:
        left.merge(key, stamp, replica_id, values)
    for key, stamp, replica_id, values in second:
        right.merge(key, stamp, replica_id, values)

    assert left.rows == right.rows


@settings(max_examples=100, deadline=None)
@given(changes=changes, data=st.data())
def test_merge_row_of_split_tables_converges_to_merging_everything(changes, data):
    split = data.draw(st.integers(0, len(changes)))
    whole, part_a, part_b = GradeTable(), GradeTable(), GradeTable()
    for key, stamp, replica_id, values in changes:
        whole.merge(key, stamp, replica_id, values)
    for key, stamp, replica_id, values in changes[:split]:
        part_a.merge(key, stamp, replica_id, values)
    for key, stamp, replica_id, values in changes[split:]:
        part_b.merge(key, stamp, replica_id, values)

    for key, row in part_b.rows.items():
        part_a.merge_row(key, list(row))

    assert part_a.rows == whole.rows


# --- check_change --------------------------------------------------------------


@pytest.mark.parametrize(
    "key, values",
    [
        ("u", [1, 2, 3, 4]),
        ("u", [None, None, None, None]),
        ("u", [None, 0, None, None]),
        ("u", [INT64_MIN, INT64_MAX, -1, 0]),
        ("x" * MAX_KEY_BYTES, [1, None, None, None]),
        ("é" * (MAX_KEY_BYTES // 2), [1, None, None, None]),  # 64 two-byte chars
        ("😀" * (MAX_KEY_BYTES // 4), [1, None, None, None]),  # 32 four-byte chars
    ],
)
def test_check_change_accepts_valid_change(key, values):
    assert check_change(key, values) is None


@pytest.mark.parametrize(
    "key, values, field",
    [
        ("", [1, 2, 3, 4], "user_id"),
        (None, [1, 2, 3, 4], "user_id"),
        (5, [1, 2, 3, 4], "user_id"),
        (b"u", [1, 2, 3, 4], "user_id"),
        ("x" * (MAX_KEY_BYTES + 1), [1, 2, 3, 4], "user_id"),
        ("é" * (MAX_KEY_BYTES // 2 + 1), [1, 2, 3, 4], "user_id"),  # 65 chars, 130 bytes
        ("x" * 127 + "é", [1, 2, 3, 4], "user_id"),  # 128 chars, 129 bytes
        ("u", [1, 2, 3], "values"),
        ("u", [1, 2, 3, 4, 5], "values"),
        ("u", [], "values"),
        ("u", (1, 2, 3, 4), "values"),
        ("u", None, "values"),
        ("u", [1.0, None, None, None], "postpaid_limit"),
        ("u", [None, 2.5, None, None], "spp"),
        ("u", [None, True, None, None], "spp"),
        ("u", [None, None, False, None], "shipping_fee"),
        ("u", [None, None, None, "4"], "return_fee"),
        ("u", [INT64_MAX + 1, None, None, None], "postpaid_limit"),
        ("u", [None, INT64_MIN - 1, None, None], "spp"),
        ("u", [None, None, None, 1 << 100], "return_fee"),
    ],
)
def test_check_change_rejects_invalid_change_naming_the_field(key, values, field):
    reason = check_change(key, values)

    assert reason is not None
    assert reason.startswith(field + ":")
