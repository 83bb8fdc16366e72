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
from tests.grades.reference_table import ReferenceTable

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
    assert table.record("u") is None
    assert table.keys() == []


def test_first_set_with_only_spp_leaves_other_fields_zero():
    table = GradeTable()

    record = table.merge("u", 100, 1, only("spp", 23))

    assert record == ["u", 0, 23, 0, 0]
    assert table.get("u") == [0, 23, 0, 0] + [0, version(100, 1), 0, 0]


def test_a_set_of_no_field_makes_an_all_zero_record():
    table = GradeTable()

    assert table.merge("u", 100, 1, [None] * 4) == ["u", 0, 0, 0, 0]
    assert table.get("u") == [0] * 8


def test_field_sent_as_zero_overwrites_the_value():
    table = GradeTable()
    table.merge("u", 100, 1, [5, 6, 7, 8])

    record = table.merge("u", 101, 1, [0, None, 0, None])

    assert record == ["u", 0, 6, 0, 8]
    assert table.get("u")[4:] == [version(101, 1), version(100, 1)] * 2


def test_absent_fields_keep_their_values_and_versions():
    table = GradeTable()
    table.merge("u", 100, 1, [5, 6, 7, 8])

    record = table.merge("u", 200, 2, only("shipping_fee", 70))

    assert record == ["u", 5, 6, 70, 8]
    assert table.get("u") == [5, 6, 70, 8] + [version(100, 1)] * 2 + [
        version(200, 2),
        version(100, 1),
    ]


def test_newer_stamp_wins_per_field():
    table = GradeTable()
    table.merge("u", 100, 3, [1, 1, 1, 1])

    record = table.merge("u", 101, 1, [2, None, 2, None])

    assert record == ["u", 2, 1, 2, 1]


def test_older_stamp_loses_even_when_applied_later():
    table = GradeTable()
    table.merge("u", 200, 1, [1, 2, 3, 4])

    record = table.merge("u", 199, 3, [9, 9, 9, 9])

    assert record == ["u", 1, 2, 3, 4]
    assert table.get("u") == [1, 2, 3, 4] + [version(200, 1)] * 4


def test_older_stamp_still_sets_fields_that_newer_write_left_absent():
    table = GradeTable()
    table.merge("u", 200, 1, only("spp", 2))

    record = table.merge("u", 100, 1, [9, 9, None, None])

    assert record == ["u", 9, 2, 0, 0]


def test_full_write_over_split_versions_wins_only_where_newer():
    table = GradeTable()
    table.merge("u", 100, 1, [1, 1, 1, 1])
    table.merge("u", 300, 1, only("spp", 3))

    record = table.merge("u", 200, 1, [2, 2, 2, 2])

    assert record == ["u", 2, 3, 2, 2]
    assert table.get("u")[4:] == [version(200, 1), version(300, 1)] + [version(200, 1)] * 2


def test_a_newer_full_write_rejoins_a_split_row_and_its_versions_are_reused():
    table = GradeTable()
    table.merge("a", 100, 1, [1, 1, 1, 1])
    table.merge("a", 200, 1, only("spp", 2))  # a's fields now have versions of their own
    table.merge("a", 300, 1, [3, 3, 3, 3])
    table.merge("b", 100, 1, only("spp", 4))  # b takes the four versions a let go

    assert table.get("a") == [3, 3, 3, 3] + [version(300, 1)] * 4
    assert table.get("b") == [0, 4, 0, 0, 0, version(100, 1), 0, 0]
    assert len(table._split) == 4  # white box: one row's four versions, not two


@pytest.mark.parametrize("first, second", [((1, 10), (2, 20)), ((2, 20), (1, 10))])
def test_equal_stamps_are_broken_by_higher_replica_id(first, second):
    table = GradeTable()
    table.merge("u", 500, first[0], only("spp", first[1]))

    record = table.merge("u", 500, second[0], only("spp", second[1]))

    assert record[1 + SPP] == 20
    assert table.get("u")[4 + SPP] == version(500, 2)


def test_reapplying_the_same_change_is_a_no_op():
    table = GradeTable()
    table.merge("u", 100, 1, [1, 2, 3, 4])
    before = table.get("u")

    table.merge("u", 100, 1, [1, 2, 3, 4])

    assert table.get("u") == before


def test_get_returns_a_copy():
    table = GradeTable()
    table.merge("u", 100, 1, [1, 2, 3, 4])

    table.get("u")[0] = 99
    table.record("u")[1] = 99

    assert table.record("u") == ["u", 1, 2, 3, 4]


def test_merge_keeps_int64_extremes():
    table = GradeTable()

    record = table.merge("u", 1, 1, [INT64_MIN, INT64_MAX, -1, 0])

    assert record == ["u", INT64_MIN, INT64_MAX, -1, 0]
    assert table.record("u") == ["u", INT64_MIN, INT64_MAX, -1, 0]


def test_keys_are_independent_and_listed_in_insertion_order():
    table = GradeTable()
    table.merge("b", 100, 1, [1, 1, 1, 1])

    table.merge("a", 200, 1, [2, 2, 2, 2])
    table.merge("b", 300, 1, [3, 3, 3, 3])

    assert len(table) == 2
    assert table.keys() == ["b", "a"]
    assert table.record("a") == ["a", 2, 2, 2, 2]


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

    backup.merge_row("u", direct.get("u"))
    direct.merge("u", 200, 1, [7, 7, 7, 7])

    assert dict(backup.items()) == dict(direct.items())


@pytest.mark.parametrize(
    "row",
    [
        [1, 2, 3, 4, 5, 6, 7, -1],  # a negative version
        [1, 2, 3, INT64_MAX + 1, 5, 6, 7, 8],
        [1, 2, 3, 4, 5, 6, 7],
    ],
)
def test_merge_row_rejects_a_bad_row_and_changes_nothing(row):
    table = GradeTable()
    table.merge_row("u", [1, 1, 1, 1, 1, 1, 1, 1])

    for key in ("u", "new"):
        with pytest.raises((ValueError, OverflowError)):
            table.merge_row(key, row)

    assert dict(table.items()) == {"u": [1] * 8}


def test_merge_with_a_version_past_int64_changes_nothing():
    table = GradeTable()
    table.merge("u", 1, 1, [1, 1, 1, 1])

    for key in ("u", "new"):
        with pytest.raises(OverflowError):
            table.merge(key, 1 << 60, 1, [2, 2, 2, 2])

    assert dict(table.items()) == {"u": [1, 1, 1, 1] + [version(1, 1)] * 4}


# --- convergence, and the reference model -------------------------------------------

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

    assert dict(left.items()) == dict(right.items())


@settings(max_examples=150, deadline=None)
@given(changes=st.lists(change, max_size=40), data=st.data())
def test_every_merge_answers_as_the_reference_model(changes, data):
    table, reference = GradeTable(), ReferenceTable()

    for key, stamp, replica_id, values in changes + data.draw(st.permutations(changes)):
        assert table.merge(key, stamp, replica_id, values) == reference.merge(
            key, stamp, replica_id, values
        )
        assert table.get(key) == reference.get(key)

    assert dict(table.items()) == reference.rows


@settings(max_examples=100, deadline=None)
@given(changes=changes, data=st.data())
def test_merge_row_of_split_tables_converges_to_merging_everything(changes, data):
    split = data.draw(st.integers(0, len(changes)))
    whole, part_a, part_b = GradeTable(), GradeTable(), GradeTable()
    reference = ReferenceTable()
    for key, stamp, replica_id, values in changes:
        whole.merge(key, stamp, replica_id, values)
    for key, stamp, replica_id, values in changes[:split]:
        part_a.merge(key, stamp, replica_id, values)
        reference.merge(key, stamp, replica_id, values)
    for key, stamp, replica_id, values in changes[split:]:
        part_b.merge(key, stamp, replica_id, values)

    for key, row in part_b.items():
        part_a.merge_row(key, row)
        reference.merge_row(key, row)

    assert dict(part_a.items()) == dict(whole.items()) == reference.rows


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
