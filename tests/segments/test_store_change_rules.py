"""What a change does with the user's memberships, against a real PostgreSQL: the rules of
segments.change_user (schema/002_change_in_one_call.sql), one scenario each.

Memberships are made expired by setting their expiry to the present with test-only SQL
(the alternative is waiting for a TTL to run out, as test_store_history does once).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from actors.segments import store
from actors.segments.store import AddItem
from tests.fixtures_pg import fetch_rows

_ids = itertools.count(3_000_000)
SLUGS = ("R_A", "R_B", "R_C", "R_Z")


@pytest.fixture(scope="module", autouse=True)
def segments(db, loop):
    for slug in SLUGS:
        loop.run(store.create_segment(db, slug, None))


def history(db, loop, user: int) -> list[tuple[str, str, datetime]]:
    rows = fetch_rows(
        loop,
        db,
        "SELECT slug, operation, at FROM segments.history WHERE user_id = $1 ORDER BY at, id",
        user,
    )
    return [(r["slug"], r["operation"], r["at"]) for r in rows]


def expiries(db, loop, user: int) -> dict[str, datetime | None]:
    rows = fetch_rows(
        loop,
        db,
        "SELECT s.slug, m.expires_at FROM segments.memberships m"
        " JOIN segments.segments s ON s.id = m.segment_id WHERE m.user_id = $1",
        user,
    )
    return {r["slug"]: r["expires_at"] for r in rows}


def expire(db, loop, user: int, slug: str) -> datetime:
    """Make a membership expire now (after it was added, before the next change); its expiry."""
    rows = fetch_rows(
        loop,
        db,
        "UPDATE segments.memberships m SET expires_at = clock_timestamp()"
        " FROM segments.segments s WHERE s.id = m.segment_id AND m.user_id = $1"
        " AND s.slug = $2 RETURNING m.expires_at",
        user,
        slug,
    )
    return rows[0][0]


def change(db, loop, user: int, add: list[AddItem], remove: list[str]) -> list[str]:
    return loop.run(store.change_user_segments(db, user, add, remove))


def test_add_remove_and_the_untouched_stay(db, loop):
    user = next(_ids)
    later = datetime.now(UTC) + timedelta(hours=1)
    change(db, loop, user, [AddItem("R_A"), AddItem("R_C", expires_at=later), AddItem("R_Z")], [])
    before = len(history(db, loop, user))
    active = change(db, loop, user, [AddItem("R_B", ttl_seconds=10)], ["R_A"])
    assert active == ["R_B", "R_C", "R_Z"]
    rows = history(db, loop, user)[before:]
    assert [(slug, op) for slug, op, _ in rows] == [("R_A", "remove"), ("R_B", "add")]
    assert rows[0][2] == rows[1][2]  # one change, one time
    kept = expiries(db, loop, user)
    assert kept["R_B"] == rows[1][2] + timedelta(seconds=10)
    assert kept["R_C"] == later and kept["R_Z"] is None and "R_A" not in kept


def test_adding_a_held_segment_replaces_its_expiry_without_history(db, loop):
    user = next(_ids)
    change(db, loop, user, [AddItem("R_A", ttl_seconds=3600)], [])
    before = history(db, loop, user)
    assert change(db, loop, user, [AddItem("R_A")], []) == ["R_A"]
    assert history(db, loop, user) == before
    assert expiries(db, loop, user) == {"R_A": None}


def test_an_expired_named_membership_leaves_at_its_expiry_first(db, loop):
    readded, removed = next(_ids), next(_ids)
    for user in (readded, removed):
        change(db, loop, user, [AddItem("R_A", ttl_seconds=3600)], [])
    expired_at = expire(db, loop, readded, "R_A")
    assert change(db, loop, readded, [AddItem("R_A")], []) == ["R_A"]
    ops = history(db, loop, readded)
    assert [op for _, op, _ in ops] == ["add", "remove", "add"]
    assert ops[1][2] == expired_at < ops[2][2]
    assert expiries(db, loop, readded) == {"R_A": None}  # the row is reused

    expired_at = expire(db, loop, removed, "R_A")
    assert change(db, loop, removed, [], ["R_A"]) == []
    ops = history(db, loop, removed)
    assert [(op, at) for _, op, at in ops[1:]] == [("remove", expired_at)]
    assert expiries(db, loop, removed) == {}


def test_an_expired_membership_not_named_is_left_to_the_reaper(db, loop):
    user = next(_ids)
    change(db, loop, user, [AddItem("R_C", ttl_seconds=3600)], [])
    expired_at = expire(db, loop, user, "R_C")
    assert change(db, loop, user, [], ["R_A"]) == []  # R_C expired: not active
    assert [op for _, op, _ in history(db, loop, user)] == ["add"]
    assert expiries(db, loop, user) == {"R_C": expired_at}


def test_removing_a_segment_not_held_is_a_noop(db, loop):
    user = next(_ids)
    assert change(db, loop, user, [], ["R_A", "R_B"]) == []
    assert history(db, loop, user) == [] and expiries(db, loop, user) == {}


def test_an_absolute_expiry_must_be_after_the_change(db, loop):
    user = next(_ids)
    past = datetime.now(UTC) - timedelta(seconds=1)
    with pytest.raises(store.ExpiryInPast) as raised:
        change(db, loop, user, [AddItem("R_A"), AddItem("R_B", expires_at=past)], [])
    assert raised.value.slug == "R_B"
    assert expiries(db, loop, user) == {} and history(db, loop, user) == []
    later = datetime.now(UTC) + timedelta(hours=1)
    assert change(db, loop, user, [AddItem("R_A", expires_at=later)], []) == ["R_A"]
    assert expiries(db, loop, user) == {"R_A": later}


def test_unknown_slugs_are_named_and_nothing_changes(db, loop):
    user = next(_ids)
    change(db, loop, user, [AddItem("R_A")], [])
    with pytest.raises(store.UnknownSegments) as raised:
        change(db, loop, user, [AddItem("R_B"), AddItem("NO_SUCH_2")], ["NO_SUCH_1", "R_A"])
    assert raised.value.slugs == ["NO_SUCH_1", "NO_SUCH_2"]
    assert expiries(db, loop, user) == {"R_A": None}
