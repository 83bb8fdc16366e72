"""The segments store against a real PostgreSQL: segments, user changes, percent rollout."""

from __future__ import annotations

import asyncio
import itertools
import math
from decimal import Decimal

import pytest

from actors.segments import rollout, store
from actors.segments.store import AddItem

_ids = itertools.count(1_000_000)


def new_user() -> int:
    return next(_ids)


def history_of(db, user_id: int, slug: str | None = None) -> list[tuple[str, str]]:
    rows = db.fetch(
        "SELECT slug, operation FROM segments.history WHERE user_id = $1 ORDER BY at, id", user_id
    )
    return [(r["slug"], r["operation"]) for r in rows if slug is None or r["slug"] == slug]


def members_of(db, slug: str) -> set[int]:
    return {
        r[0]
        for r in db.fetch(
            "SELECT m.user_id FROM segments.memberships m "
            "JOIN segments.segments s ON s.id = m.segment_id "
            "WHERE s.slug = $1 AND s.deleted_at IS NULL",
            slug,
        )
    }


def test_create_list_delete_and_create_again(db):
    created = db.run(store.create_segment(db.pool, "S_BASIC", None))
    assert created == store.Created("S_BASIC", None, 0)
    with pytest.raises(store.SegmentExists):
        db.run(store.create_segment(db.pool, "S_BASIC", Decimal(10)))
    user = new_user()
    assert db.run(store.change_user_segments(db.pool, user, [AddItem("S_BASIC")], [])) == [
        "S_BASIC"
    ]
    listed = {s.slug: s for s in db.run(store.list_segments(db.pool))}
    assert listed["S_BASIC"] == store.SegmentInfo("S_BASIC", None, 1)

    assert db.run(store.delete_segment(db.pool, "S_BASIC")) == 1
    assert db.run(store.user_segments(db.pool, user)) == []
    assert "S_BASIC" not in {s.slug for s in db.run(store.list_segments(db.pool))}
    with pytest.raises(store.UnknownSegments):
        db.run(store.delete_segment(db.pool, "S_BASIC"))
    assert history_of(db, user) == [("S_BASIC", "add"), ("S_BASIC", "remove")]

    db.run(store.create_segment(db.pool, "S_BASIC", None))  # a deleted slug comes back empty
    assert db.run(store.user_segments(db.pool, user)) == []


def test_change_is_all_or_nothing(db):
    db.run(store.create_segment(db.pool, "S_AON", None))
    user = new_user()
    with pytest.raises(store.UnknownSegments) as caught:
        db.run(
            store.change_user_segments(db.pool, user, [AddItem("S_AON")], ["S_NOPE_2", "S_NOPE_1"])
        )
    assert caught.value.slugs == ["S_NOPE_1", "S_NOPE_2"]
    assert history_of(db, user) == []
    assert db.fetch("SELECT 1 FROM segments.users WHERE id = $1", user) == []  # not even known


def test_add_held_replaces_expiry_and_remove_not_held_is_noop(db):
    db.run(store.create_segment(db.pool, "S_IDEM", None))
    db.run(store.create_segment(db.pool, "S_OTHER", None))
    user = new_user()
    db.run(store.change_user_segments(db.pool, user, [AddItem("S_IDEM", ttl_seconds=60)], []))
    first = db.fetch("SELECT expires_at FROM segments.memberships WHERE user_id = $1", user)[0][0]
    db.run(
        store.change_user_segments(
            db.pool, user, [AddItem("S_IDEM", ttl_seconds=3600)], ["S_OTHER"]
        )
    )
    second = db.fetch("SELECT expires_at FROM segments.memberships WHERE user_id = $1", user)[0][0]
    assert (second - first).total_seconds() > 3000
    db.run(store.change_user_segments(db.pool, user, [AddItem("S_IDEM")], []))  # no expiry now
    assert (
        db.fetch("SELECT expires_at FROM segments.memberships WHERE user_id = $1", user)[0][0]
        is None
    )
    assert history_of(db, user) == [("S_IDEM", "add")]


def test_expires_at_in_the_past_is_rejected(db):
    db.run(store.create_segment(db.pool, "S_PAST", None))
    user = new_user()
    past = db.fetch("SELECT now() - interval '1 second'")[0][0]
    with pytest.raises(store.ExpiryInPast):
        db.run(store.change_user_segments(db.pool, user, [AddItem("S_PAST", past)], []))
    assert history_of(db, user) == []


def test_percent_rollout_of_known_users_matches_the_python_hash(db):
    users = [new_user() for _ in range(1000)]

    async def see_all():
        await asyncio.gather(*(store.user_segments(db.pool, u) for u in users))

    db.run(see_all())
    created = db.run(store.create_segment(db.pool, "S_PCT30", Decimal(30)))
    known = [r[0] for r in db.fetch("SELECT id FROM segments.users")]  # earlier tests' too
    expected = {u for u in known if rollout.selected("S_PCT30", u, 30)}
    assert members_of(db, "S_PCT30") == expected
    assert created.users_assigned == len(expected)
    # 30 % of 1,000 within four standard deviations of the binomial
    share = len(expected.intersection(users))
    assert abs(share - 300) < 4 * math.sqrt(1000 * 0.3 * 0.7)
    assert all(history_of(db, u, "S_PCT30") == [("S_PCT30", "add")] for u in expected)

    # A fractional percent: the bulk INSERT ... SELECT and Python agree at the boundary.
    db.run(store.create_segment(db.pool, "S_PCT_FRAC", Decimal("33.337")))
    assert members_of(db, "S_PCT_FRAC") == {
        u for u in known if rollout.selected("S_PCT_FRAC", u, Decimal("33.337"))
    }

    # Same answer after delete and create again with the same percent.
    db.run(store.delete_segment(db.pool, "S_PCT30"))
    again = db.run(store.create_segment(db.pool, "S_PCT30", Decimal(30)))
    assert again.users_assigned == len(expected)


def test_user_seen_later_is_assigned_in_the_first_request_and_remove_sticks(db):
    db.run(store.create_segment(db.pool, "S_LATE", Decimal("50.5")))
    users = [new_user() for _ in range(200)]
    inside = [u for u in users if rollout.selected("S_LATE", u, Decimal("50.5"))]
    outside = [u for u in users if u not in inside]
    assert inside and outside
    assert "S_LATE" in db.run(store.user_segments(db.pool, inside[0]))
    assert "S_LATE" not in db.run(store.user_segments(db.pool, outside[0]))
    # a change request is a first request too
    assert "S_LATE" in db.run(store.change_user_segments(db.pool, inside[1], [], []))
    assert "S_LATE" not in db.run(store.change_user_segments(db.pool, inside[2], [], ["S_LATE"]))
    assert "S_LATE" not in db.run(store.user_segments(db.pool, inside[2]))
    assert history_of(db, inside[2], "S_LATE") == [("S_LATE", "add"), ("S_LATE", "remove")]


def test_first_seen_users_racing_a_percent_creation_are_assigned_exactly_once(db):
    users = [new_user() for _ in range(300)]

    async def scenario():
        async def see(user):
            await store.user_segments(db.pool, user)

        tasks = [asyncio.create_task(see(u)) for u in users[:150]]
        tasks.append(asyncio.create_task(store.create_segment(db.pool, "S_RACE", Decimal(50))))
        tasks += [asyncio.create_task(see(u)) for u in users[150:]]
        await asyncio.gather(*tasks)

    db.run(scenario())
    for user in users:
        expected = [("S_RACE", "add")] if rollout.selected("S_RACE", user, 50) else []
        assert history_of(db, user, "S_RACE") == expected, user


def test_concurrent_changes_of_one_user_alternate_in_history(db):
    db.run(store.create_segment(db.pool, "S_CONC_A", None))
    db.run(store.create_segment(db.pool, "S_CONC_B", None))
    user = new_user()
    ops = [
        ([AddItem("S_CONC_A")], ["S_CONC_B"]),
        ([AddItem("S_CONC_B")], ["S_CONC_A"]),
        ([AddItem("S_CONC_A"), AddItem("S_CONC_B")], []),
        ([], ["S_CONC_A", "S_CONC_B"]),
    ]

    async def scenario():
        calls = [store.change_user_segments(db.pool, user, *ops[i % len(ops)]) for i in range(40)]
        return await asyncio.gather(*calls)

    db.run(scenario())
    final = set(db.run(store.user_segments(db.pool, user)))
    for slug in ("S_CONC_A", "S_CONC_B"):
        hist = [op for _, op in history_of(db, user, slug)]
        assert hist == ["add", "remove"] * (len(hist) // 2) + ["add"] * (len(hist) % 2), hist
        assert (slug in final) == (hist[-1:] == ["add"])


def test_delete_racing_changes_leaves_no_member_of_a_deleted_segment(db):
    db.run(store.create_segment(db.pool, "S_DEL_RACE", None))
    users = [new_user() for _ in range(60)]

    async def add(user):
        try:
            await store.change_user_segments(db.pool, user, [AddItem("S_DEL_RACE")], [])
        except store.UnknownSegments:
            pass

    async def scenario():
        tasks = [asyncio.create_task(add(u)) for u in users[:30]]
        tasks.append(asyncio.create_task(store.delete_segment(db.pool, "S_DEL_RACE")))
        tasks += [asyncio.create_task(add(u)) for u in users[30:]]
        await asyncio.gather(*tasks)

    db.run(scenario())
    assert members_of(db, "S_DEL_RACE") == set()
    assert (
        db.fetch(
            "SELECT 1 FROM segments.memberships m "
            "JOIN segments.segments s ON s.id = m.segment_id "
            "WHERE s.slug = 'S_DEL_RACE'"
        )
        == []
    )
    for user in users:
        assert history_of(db, user, "S_DEL_RACE") in (
            [],
            [("S_DEL_RACE", "add"), ("S_DEL_RACE", "remove")],
        )


def test_two_deletions_racing_changes_of_their_members_finish_without_deadlock(db):
    for slug in ("S_DD_A", "S_DD_B", "S_DD_C"):
        db.run(store.create_segment(db.pool, slug, None))
    users = [new_user() for _ in range(30)]

    async def setup():
        await asyncio.gather(
            *(
                store.change_user_segments(db.pool, u, [AddItem("S_DD_A"), AddItem("S_DD_B")], [])
                for u in users
            )
        )

    async def change(user, i):
        add = [AddItem("S_DD_C")] + ([AddItem("S_DD_A")] if i % 2 else [])
        try:
            return await store.change_user_segments(db.pool, user, add, [])
        except store.UnknownSegments:
            return None

    async def scenario():
        tasks = [asyncio.create_task(change(u, i)) for i, u in enumerate(users[:15])]
        tasks.append(asyncio.create_task(store.delete_segment(db.pool, "S_DD_A")))
        tasks.append(asyncio.create_task(store.delete_segment(db.pool, "S_DD_B")))
        tasks += [asyncio.create_task(change(u, i)) for i, u in enumerate(users[15:])]
        return await asyncio.gather(*tasks)  # a deadlock would raise here

    db.run(setup())
    db.run(scenario())
    assert members_of(db, "S_DD_A") == members_of(db, "S_DD_B") == set()
    for user in users:
        for slug in ("S_DD_A", "S_DD_B"):
            assert history_of(db, user, slug) == [(slug, "add"), (slug, "remove")]
