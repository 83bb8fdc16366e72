"""changes.plan: what a change does, from the user's memberships (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actors.segments.changes import AddItem, ExpiryInPast, plan

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
EARLIER, LATER = NOW - timedelta(seconds=5), NOW + timedelta(seconds=5)
IDS = {"A": 1, "B": 2, "C": 3}


def test_add_remove_and_the_untouched_stay():
    held = {1: ("A", None), 3: ("C", LATER), 9: ("Z", None)}
    change = plan(NOW, IDS, held, [AddItem("B", ttl_seconds=10)], ["A"])
    assert change.delete == [1]
    assert change.upsert == [(2, NOW + timedelta(seconds=10))]
    assert change.history == [("A", "remove", NOW), ("B", "add", NOW)]
    assert change.active == ["B", "C", "Z"]


def test_adding_a_held_segment_replaces_its_expiry_without_history():
    change = plan(NOW, IDS, {1: ("A", LATER)}, [AddItem("A")], [])
    assert change.upsert == [(1, None)] and change.history == [] and change.active == ["A"]


def test_an_expired_named_membership_leaves_at_its_expiry_first():
    readd = plan(NOW, IDS, {1: ("A", EARLIER)}, [AddItem("A")], [])
    assert readd.delete == [] and readd.upsert == [(1, None)]  # the row is reused
    assert readd.history == [("A", "remove", EARLIER), ("A", "add", NOW)]
    removed = plan(NOW, IDS, {1: ("A", EARLIER)}, [], ["A"])
    assert removed.delete == [1] and removed.history == [("A", "remove", EARLIER)]
    assert removed.active == []


def test_an_expired_membership_not_named_is_left_to_the_reaper():
    change = plan(NOW, {"A": 1}, {3: ("C", EARLIER)}, [], ["A"])  # ids: the named slugs
    assert change == ([], [], [], [])


def test_removing_a_segment_not_held_is_a_noop():
    assert plan(NOW, IDS, {}, [], ["A", "B"]) == ([], [], [], [])


def test_an_absolute_expiry_must_be_after_the_change():
    with pytest.raises(ExpiryInPast):
        plan(NOW, IDS, {}, [AddItem("A", expires_at=NOW)], [])
    assert plan(NOW, IDS, {}, [AddItem("A", expires_at=LATER)], []).upsert == [(1, LATER)]
