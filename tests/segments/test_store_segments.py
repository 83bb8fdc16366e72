"""The segments store against a real PostgreSQL: segments, user changes, percent rollout."""

from __future__ import annotations

import asyncio
import itertools
import math
from decimal import Decimal

import pytest

from actors.segments import rollout, store
from actors.segments.store import AddItem
from tests.fixtures_pg import fetch_rows

_ids = itertools.count(1_000_000)


def new_user() -> int:
    return next(_ids)


def history_of(db, loop, user_id: int, slug: str | None = None) -> list[tuple[str, str]]:
    rows = fetch_rows(
        loop,
        db,
        "SELECT slug, operation FROM segments.history WHERE user_id = $1 ORDER BY at, id",
        user_id,
    )
    return [(r["slug"], r["operation"]) for r in rows if slug is None or r["slug"] == slug]


def members_of(db, loop, slug: str) -> set[int]:
    return {
        r[0]
        for r in fetch_rows(
            loop,
            db,
            "SELECT m.user_id FROM segments.memberships m "
            "JOIN segments.segments s ON s.id = m.segment_id "
            "WHERE s.slug = $1 AND s.deleted_at IS NULL",
            slug,
        )
    }


def test_create_list_delete_and_create_again(db, loop):
    created = loop.run(store.create_segment(db, "S_BASIC", None))
    assert created == store.Created("S_BASIC", None, 0)
    with pytest.raises(store.SegmentExists):
        loop.run(store.create_segment(db, "S_BASIC", Decimal(10)))
    user = new_user()
    assert loop.run(store.change_user_segments(db, user, [AddItem("S_BASIC")], [])) == ["S_BASIC"]
    listed = {s.slug: s for s in loop.run(store.list_segments(db))}
    assert listed["S_BASIC"] == store.SegmentInfo("S_BASIC", None, 1)

    assert loop.run(store.delete_segment(db, "S_BASIC")) == 1
    assert loop.run(store.user_segments(db, user)) == []
    assert "S_BASIC" not in {s.slug for s in loop.run(store.list_segments(db))}
    with pytest.raises(store.UnknownSegments):
        loop.run(store.delete_segment(db, "S_BASIC"))
    assert history_of(db, loop, user) == [("S_BASIC", "add"), ("S_BASIC", "remove")]

    loop.run(store.create_segment(db, "S_BASIC", None))  # a deleted slug comes back empty
    assert loop.run(store.user_segments(db, user)) == []


def test_change_is_all_or_nothing(db, loop):
    loop.run(store.create_segment(db, "S_AON", None))
    user = new_user()
    with pytest.raises(store.UnknownSegments) as caught:
        loop.run(store.change_user_segments(db, user, [AddItem("S_AON")], ["S_NOPE_2", "S_NOPE_1"]))
    assert caught.value.slugs == ["S_NOPE_1", "S_NOPE_2"]
    assert history_of(db, loop, user) == []
    assert (
        fetch_rows(loop, db, "SELECT 1 FROM segments.users WHERE id = $1", user) == []
    )  # not even known


def test_add_held_replaces_expiry_and_remove_not_held_is_noop(db, loop):
    loop.run(store.create_segment(db, "S_IDEM", None))
    loop.run(store.create_segment(db, "S_OTHER", None))
    user = new_user()
    loop.run(store.change_user_segments(db, user, [AddItem("S_IDEM", ttl_seconds=60)], []))
    first = fetch_rows(
        loop, db, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", user
    )[0][0]
    loop.run(
        store.change_user_segments(db, user, [AddItem("S_IDEM", ttl_seconds=3600)], ["S_OTHER"])
    )
    second = fetch_rows(
        loop, db, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", user
    )[0][0]
    assert (second - first).total_seconds() > 3000
    loop.run(store.change_user_segments(db, user, [AddItem("S_IDEM")], []))  # no expiry now
    assert (
        fetch_rows(
            loop, db, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", user
        )[0][0]
        is None
    )
    assert history_of(db, loop, user) == [("S_IDEM", "add")]


def test_expires_at_in_the_past_is_rejected(db, loop):
    loop.run(store.create_segment(db, "S_PAST", None))
    user = new_user()
    past = fetch_rows(loop, db, "SELECT now() - interval '1 second'")[0][0]
    with pytest.raises(store.ExpiryInPast):
        loop.run(store.change_user_segments(db, user, [AddItem("S_PAST", past)], []))
    assert history_of(db, loop, user) == []


def test_percent_rollout_of_known_users_matches_the_python_hash(db, loop):
    users = [new_user() for _ in range(1000)]

    async def see_all():
        await asyncio.gather(*(store.user_segments(db, u) for u in users))

    loop.run(see_all())
    created = loop.run(store.create_segment(db, "S_PCT30", Decimal(30)))
    known = [
        r[0] for r in fetch_rows(loop, db, "SELECT id FROM segments.users")
    ]  # earlier tests' too
    expected = {u for u in known if rollout.selected("S_PCT30", u, 30)}
    assert members_of(db, loop, "S_PCT30") == expected
    assert created.users_assigned == len(expected)
    # 30 % of 1,000 within four standard deviations of the binomial
    share = len(expected.intersection(users))
    assert abs(share - 300) < 4 * math.sqrt(1000 * 0.3 * 0.7)
    assert all(history_of(db, loop, u, "S_PCT30") == [("S_PCT30", "add")] for u in expected)

    # A fractional percent: the bulk INSERT ... SELECT and Python agree at the boundary.
    loop.run(store.create_segment(db, "S_PCT_FRAC", Decimal("33.337")))
    assert members_of(db, loop, "S_PCT_FRAC") == {
        u for u in known if rollout.selected("S_PCT_FRAC", u, Decimal("33.337"))
    }

    # Same answer after delete and create again with the same percent.
    loop.run(store.delete_segment(db, "S_PCT30"))
    again = loop.run(store.create_segment(db, "S_PCT30", Decimal(30)))
    assert again.users_assigned == len(expected)


def test_user_seen_later_is_assigned_in_the_first_request_and_remove_sticks(db, loop):
    loop.run(store.create_segment(db, "S_LATE", Decimal("50.5")))
    users = [new_user() for _ in range(200)]
    inside = [u for u in users if rollout.selected("S_LATE", u, Decimal("50.5"))]
    outside = [u for u in users if u not in inside]
    assert inside and outside
    assert "S_LATE" in loop.run(store.user_segments(db, inside[0]))
    assert "S_LATE" not in loop.run(store.user_segments(db, outside[0]))
    # a change request is a first request too
    assert "S_LATE" in loop.run(store.change_user_segments(db, inside[1], [], []))
    assert "S_LATE" not in loop.run(store.change_user_segments(db, inside[2], [], ["S_LATE"]))
    assert "S_LATE" not in loop.run(store.user_segments(db, inside[2]))
    assert history_of(db, loop, inside[2], "S_LATE") == [("S_LATE", "add"), ("S_LATE", "remove")]


def test_first_seen_users_racing_a_percent_creation_are_assigned_exactly_once(db, loop):
    users = [new_user() for _ in range(300)]

    async def scenario():
        async def see(user):
            await store.user_segments(db, user)

        tasks = [asyncio.create_task(see(u)) for u in users[:150]]
        tasks.append(asyncio.create_task(store.create_segment(db, "S_RACE", Decimal(50))))
        tasks += [asyncio.create_task(see(u)) for u in users[150:]]
        await asyncio.gather(*tasks)

    loop.run(scenario())
    for user in users:
        expected = [("S_RACE", "add")] if rollout.selected("S_RACE", user, 50) else []
        assert history_of(db, loop, user, "S_RACE") == expected, user


def test_concurrent_changes_of_one_user_alternate_in_history(db, loop):
    loop.run(store.create_segment(db, "S_CONC_A", None))
    loop.run(store.create_segment(db, "S_CONC_B", None))
    user = new_user()
    ops = [
        ([AddItem("S_CONC_A")], ["S_CONC_B"]),
        ([AddItem("S_CONC_B")], ["S_CONC_A"]),
        ([AddItem("S_CONC_A"), AddItem("S_CONC_B")], []),
        ([], ["S_CONC_A", "S_CONC_B"]),
    ]

    async def scenario():
        calls = [store.change_user_segments(db, user, *ops[i % len(ops)]) for i in range(40)]
        return await asyncio.gather(*calls)

    loop.run(scenario())
    final = set(loop.run(store.user_segments(db, user)))
    for slug in ("S_CONC_A", "S_CONC_B"):
        hist = [op for _, op in history_of(db, loop, user, slug)]
        assert hist == ["add", "remove"] * (len(hist) // 2) + ["add"] * (len(hist) % 2), hist
        assert (slug in final) == (hist[-1:] == ["add"])


def test_delete_racing_changes_leaves_no_member_of_a_deleted_segment(db, loop):
    loop.run(store.create_segment(db, "S_DEL_RACE", None))
    users = [new_user() for _ in range(60)]

    async def add(user):
        try:
            await store.change_user_segments(db, user, [AddItem("S_DEL_RACE")], [])
        except store.UnknownSegments:
            pass

    async def scenario():
        tasks = [asyncio.create_task(add(u)) for u in users[:30]]
        tasks.append(asyncio.create_task(store.delete_segment(db, "S_DEL_RACE")))
        tasks += [asyncio.create_task(add(u)) for u in users[30:]]
        await asyncio.gather(*tasks)

    loop.run(scenario())
    assert members_of(db, loop, "S_DEL_RACE") == set()
    assert (
        fetch_rows(
            loop,
            db,
            "SELECT 1 FROM segments.memberships m "
            "JOIN segments.segments s ON s.id = m.segment_id "
            "WHERE s.slug = 'S_DEL_RACE'",
        )
        == []
    )
    for user in users:
        assert history_of(db, loop, user, "S_DEL_RACE") in (
            [],
            [("S_DEL_RACE", "add"), ("S_DEL_RACE", "remove")],
        )


def test_two_deletions_racing_changes_of_their_members_finish_without_deadlock(db, loop):
    for slug in ("S_DD_A", "S_DD_B", "S_DD_C"):
        loop.run(store.create_segment(db, slug, None))
    users = [new_user() for _ in range(30)]

    async def setup():
        await asyncio.gather(
            *(
                store.change_user_segments(db, u, [AddItem("S_DD_A"), AddItem("S_DD_B")], [])
                for u in users
            )
        )

    async def change(user, i):
        add = [AddItem("S_DD_C")] + ([AddItem("S_DD_A")] if i % 2 else [])
        try:
            return await store.change_user_segments(db, user, add, [])
        except store.UnknownSegments:
            return None

    async def scenario():
        tasks = [asyncio.create_task(change(u, i)) for i, u in enumerate(users[:15])]
        tasks.append(asyncio.create_task(store.delete_segment(db, "S_DD_A")))
        tasks.append(asyncio.create_task(store.delete_segment(db, "S_DD_B")))
        tasks += [asyncio.create_task(change(u, i)) for i, u in enumerate(users[15:])]
        return await asyncio.gather(*tasks)  # a deadlock would raise here

    loop.run(setup())
    loop.run(scenario())
    assert members_of(db, loop, "S_DD_A") == members_of(db, loop, "S_DD_B") == set()
    for user in users:
        for slug in ("S_DD_A", "S_DD_B"):
            assert history_of(db, loop, user, slug) == [(slug, "add"), (slug, "remove")]
