"""TTL, the reaper's store side and the history stream against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from actors.segments import store
from actors.segments.store import AddItem
from tests.fixtures_pg import fetch_rows

_ids = itertools.count(2_000_000)


def new_user() -> int:
    return next(_ids)


def rows_of(db, loop, user_id: int) -> list[tuple[str, str, datetime]]:
    rows = fetch_rows(
        loop,
        db,
        "SELECT slug, operation, at FROM segments.history WHERE user_id = $1 ORDER BY at, id",
        user_id,
    )
    return [(r["slug"], r["operation"], r["at"]) for r in rows]


class Line(NamedTuple):
    user_id: int
    slug: str
    operation: str
    at: datetime


def collect(db, loop, start, end, user_id=None, batch_rows=1000) -> list[Line]:
    async def go():
        out = []
        async for batch in store.history_lines(
            db, start, end, user_id, ("add", "remove"), batch_rows
        ):
            assert len(batch) <= batch_rows
            out.extend(batch)
        return out

    lines = []
    for text in loop.run(go()):
        user, slug, operation, at = text.split(";")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", at), at
        lines.append(Line(int(user), slug, operation, datetime.fromisoformat(at)))
    return lines


def test_expired_membership_is_not_read_and_is_reaped_at_its_expiry(db, loop):
    loop.run(store.create_segment(db, "T_TTL", None))
    user = new_user()
    assert loop.run(
        store.change_user_segments(db, user, [AddItem("T_TTL", ttl_seconds=1)], [])
    ) == ["T_TTL"]
    expires = fetch_rows(
        loop, db, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", user
    )[0][0]
    assert 0 < loop.run(store.seconds_to_next_expiry(db)) <= 1
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    assert loop.run(store.user_segments(db, user)) == []  # read filter, before any reaper
    assert [s.users for s in loop.run(store.list_segments(db)) if s.slug == "T_TTL"] == [0]
    assert loop.run(store.reap_expired(db)) >= 1
    assert loop.run(store.reap_expired(db)) == 0
    assert rows_of(db, loop, user)[-1] == ("T_TTL", "remove", expires)


def test_readding_an_expired_membership_records_its_removal_first(db, loop):
    loop.run(store.create_segment(db, "T_READD", None))
    user = new_user()
    loop.run(store.change_user_segments(db, user, [AddItem("T_READD", ttl_seconds=1)], []))
    expires = fetch_rows(
        loop, db, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", user
    )[0][0]
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    assert loop.run(store.change_user_segments(db, user, [AddItem("T_READD")], [])) == ["T_READD"]
    ops = rows_of(db, loop, user)
    assert [op for _, op, _ in ops] == ["add", "remove", "add"]
    assert ops[1][2] == expires < ops[2][2]


def test_two_reapers_write_each_removal_once(db, loop):
    loop.run(store.create_segment(db, "T_REAP2", None))
    users = [new_user() for _ in range(200)]

    async def add_all():
        await asyncio.gather(
            *(
                store.change_user_segments(db, u, [AddItem("T_REAP2", ttl_seconds=1)], [])
                for u in users
            )
        )

    loop.run(add_all())
    time.sleep(1.1)

    async def reap_twice():
        return await asyncio.gather(*(store.reap_expired(db, limit=50) for _ in range(12)))

    reaped = sum(loop.run(reap_twice()))
    while more := loop.run(store.reap_expired(db, limit=50)):
        reaped += more
    counts = fetch_rows(
        loop,
        db,
        "SELECT user_id, count(*) FROM segments.history WHERE slug = 'T_REAP2' "
        "AND operation = 'remove' GROUP BY user_id",
    )
    assert reaped == len(users) == len(counts)
    assert {c for _, c in counts} == {1}


def test_deleting_a_segment_stamps_unreaped_expiries_with_their_expiry(db, loop):
    loop.run(store.create_segment(db, "T_DEL_TTL", None))
    short, long = new_user(), new_user()
    loop.run(store.change_user_segments(db, short, [AddItem("T_DEL_TTL", ttl_seconds=1)], []))
    loop.run(store.change_user_segments(db, long, [AddItem("T_DEL_TTL", ttl_seconds=99)], []))
    expires = fetch_rows(
        loop, db, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", short
    )[0][0]
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
    loop.run(store.delete_segment(db, "T_DEL_TTL"))
    assert rows_of(db, loop, short)[-1] == ("T_DEL_TTL", "remove", expires)
    assert rows_of(db, loop, long)[-1][1] == "remove" and rows_of(db, loop, long)[-1][
        2
    ] < expires + timedelta(seconds=5)


def test_history_streams_in_time_order_with_user_filter_and_period_bounds(db, loop):
    loop.run(store.create_segment(db, "T_HIST_A", None))
    loop.run(store.create_segment(db, "T_HIST_B", None))
    users = [new_user() for _ in range(5)]
    for round_ in range(3):
        for user in users:
            add, remove = (
                (["T_HIST_A"], ["T_HIST_B"]) if round_ % 2 else (["T_HIST_B"], ["T_HIST_A"])
            )
            loop.run(store.change_user_segments(db, user, [AddItem(s) for s in add], remove))
    start = datetime.now(UTC) - timedelta(hours=1)
    end = start + timedelta(hours=2)
    everything = collect(db, loop, start, end, batch_rows=3)
    ats = [(r.at) for r in everything]
    assert ats == sorted(ats)
    mine = [r for r in everything if r.user_id == users[2]]
    assert collect(db, loop, start, end, user_id=users[2], batch_rows=2) == mine
    assert [(r.slug, r.operation, r.at) for r in mine] == [
        row for row in rows_of(db, loop, users[2]) if row[0].startswith("T_HIST")
    ]
    assert [(r.slug, r.operation) for r in mine] == [
        ("T_HIST_B", "add"),  # removals of one change come before its additions
        ("T_HIST_B", "remove"),
        ("T_HIST_A", "add"),
        ("T_HIST_A", "remove"),
        ("T_HIST_B", "add"),
    ]
    assert collect(db, loop, end, end + timedelta(days=31)) == []
