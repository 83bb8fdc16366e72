"""The `segments` command as real processes: two instances, restarts, kill -9, a stopped
reaper, TTL, exits."""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import asyncpg
import requests

from actors.runtime.testing import wait_until
from actors.segments import rollout
from actors.segments.testing import Segments

_ids = itertools.count(5_000_000)
CLIENT_THREADS = 8


def sql(dsn: str, query: str, *args):
    async def go():
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


def start(procs, dsn, name="segments", **kwargs) -> Segments:
    service = procs.add(Segments(dsn, procs.dir, name=name, **kwargs))
    service.start()
    service.wait_ready()
    return service


_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def answers(service: Segments, users: list[int], slug: str) -> dict[int, bool]:
    """Whether each user holds slug, asked with CLIENT_THREADS requests in flight."""

    def ask(user):
        response = _session().get(service.url(f"/api/users/{user}/segments"), timeout=10)
        assert response.status_code == 200, response.text
        return slug in response.json()["segments"]

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return dict(zip(users, pool.map(ask, users), strict=True))


def test_percent_share_is_stable_across_instances_restarts_and_recreation(procs, pg_dsn):
    first = start(procs, pg_dsn, "first", workers=2)
    second = start(procs, pg_dsn, "second", workers=2)
    created = first.post("/api/segments", {"slug": "P_SHARE", "percent": 30})
    assert created.status_code == 201, created.text
    users = [next(_ids) for _ in range(1000)]
    on_first = answers(first, users, "P_SHARE")  # each user's first request
    share = sum(on_first.values())
    assert abs(share - 300) < 4 * math.sqrt(1000 * 0.3 * 0.7), share
    assert on_first == {u: rollout.selected("P_SHARE", u, 30) for u in users}
    assert answers(second, users, "P_SHARE") == on_first

    procs.stop(first)
    first = start(procs, pg_dsn, "first-again", port=first.port, workers=2)
    assert answers(first, users, "P_SHARE") == on_first

    # deleted and created again with the same percent: the known users, in bulk, same answers
    assert second.delete("/api/segments/P_SHARE").status_code == 204
    again = second.post("/api/segments", {"slug": "P_SHARE", "percent": 30})
    assert again.json()["users_assigned"] == share
    assert answers(first, users, "P_SHARE") == on_first
    listed = {s["slug"]: s for s in first.get("/api/segments").json()}
    assert listed["P_SHARE"] == {"slug": "P_SHARE", "percent": 30, "users": share}


def test_ttl_expiry_is_invisible_at_once_and_in_history_at_its_time(procs, pg_dsn):
    service = start(procs, pg_dsn)
    assert service.post("/api/segments", {"slug": "P_TTL"}).status_code == 201
    user = next(_ids)
    response = service.post(
        f"/api/users/{user}/segments", {"add": [{"slug": "P_TTL", "ttl_seconds": 1}]}
    )
    assert response.json()["segments"] == ["P_TTL"]
    expires = sql(pg_dsn, "SELECT expires_at FROM segments.memberships WHERE user_id = $1", user)[
        0
    ][0]
    while datetime.now(UTC) < expires:
        time.sleep(0.01)
    assert service.user_segments(user) == []  # hidden by the read's time filter

    def reaped():  # by the reaper, not by the report (which would reap on its own)
        return sql(
            pg_dsn,
            "SELECT at FROM segments.history WHERE user_id = $1 AND operation = 'remove'",
            user,
        )

    rows = wait_until(reaped, 1.5, "the reaper to record the expiry")
    late_s = (datetime.now(UTC) - expires).total_seconds()
    assert rows[0][0] == expires
    # the add nudged the reaper, which slept until the expiry (measured: ~10 ms late), not
    # until its next 1 s round
    assert late_s < 0.75, late_s


def test_a_stopped_reaper_is_restarted_by_its_liveness_probe_and_reaps_again(procs, pg_dsn):
    service = start(procs, pg_dsn)
    assert service.post("/api/segments", {"slug": "P_HUNG"}).status_code == 201
    stopped = service.hang_child("reaper", "segments: reaper")
    user = next(_ids)
    added = service.post(
        f"/api/users/{user}/segments", {"add": [{"slug": "P_HUNG", "ttl_seconds": 1}]}
    )
    assert "P_HUNG" in added.json()["segments"], added.text
    (expires,) = sql(
        pg_dsn,
        "SELECT expires_at FROM segments.memberships WHERE user_id = $1"
        " AND expires_at IS NOT NULL",  # P_HUNG's, not a percent segment's the user falls in
        user,
    )
    service.wait_hung_child_replaced("reaper", "segments: reaper", stopped)
    rows = wait_until(
        lambda: sql(
            pg_dsn,
            "SELECT at FROM segments.history WHERE user_id = $1 AND slug = 'P_HUNG'"
            " AND operation = 'remove'",
            user,
        ),
        5,
        "the new reaper to record the expiry that passed while the old one was stopped",
    )
    assert rows[0][0] == expires[0]  # stamped with its expiry, not with the late reaping


def test_kill9_loses_no_acknowledged_change_and_the_reaper_catches_up(procs, pg_dsn):
    service = start(procs, pg_dsn)
    for slug in ("K_A", "K_B", "K_TTL"):
        assert service.post("/api/segments", {"slug": slug}).status_code == 201
    ttl_user = next(_ids)
    service.post(f"/api/users/{ttl_user}/segments", {"add": [{"slug": "K_TTL", "ttl_seconds": 1}]})
    acknowledged: list[int] = []
    stop = threading.Event()

    def writer():
        session = requests.Session()
        while not stop.is_set():
            user = next(_ids)
            try:
                response = session.post(
                    service.url(f"/api/users/{user}/segments"),
                    json={"add": ["K_A", "K_B"]},
                    timeout=5,
                )
            except requests.RequestException:
                continue
            if response.status_code == 200:
                acknowledged.append(user)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 100, 30, "100 acknowledged changes")
    service.kill9()  # the supervisor, the reaper, gunicorn and its workers at once
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    time.sleep(1.0)  # K_TTL expires while nothing runs
    procs.stop(service)
    service = start(procs, pg_dsn, "restarted", port=service.port)

    adds = dict(
        (r[0], r[1])
        for r in sql(
            pg_dsn,
            "SELECT user_id, count(*) FROM segments.history WHERE slug IN ('K_A', 'K_B') "
            "AND operation = 'add' GROUP BY user_id",
        )
    )
    for user in acknowledged:
        assert {"K_A", "K_B"} <= set(service.user_segments(user))
        assert adds[user] == 2  # one add per segment: nothing applied twice
    assert set(adds.values()) == {2}  # unacknowledged ones are all or nothing too
    rows = wait_until(
        lambda: sql(
            pg_dsn,
            "SELECT h.at, m.expires_at FROM segments.history h "
            "LEFT JOIN segments.memberships m ON m.user_id = h.user_id "
            "WHERE h.user_id = $1 AND h.operation = 'remove' AND h.slug = 'K_TTL'",
            ttl_user,
        ),
        3,
        "the restarted reaper to catch up",
    )
    assert rows[0][1] is None  # the membership left, stamped with its expiry:
    added = sql(
        pg_dsn,
        "SELECT at FROM segments.history WHERE user_id = $1 "
        "AND operation = 'add' AND slug = 'K_TTL'",
        ttl_user,
    )[0][0]
    assert (rows[0][0] - added).total_seconds() == 1.0


def test_concurrent_changes_of_one_user_on_two_instances_are_serial(procs, pg_dsn):
    first = start(procs, pg_dsn, "first", workers=2)
    second = start(procs, pg_dsn, "second", workers=2)
    slugs = ["C_A", "C_B", "C_C"]
    for slug in slugs:
        assert first.post("/api/segments", {"slug": slug}).status_code == 201
    user = next(_ids)
    rng = random.Random(7)
    changes = []
    for _ in range(120):
        picked = rng.sample(slugs, 2)
        changes.append({"add": [picked[0]], "remove": [picked[1]]})

    def send(i):
        service = (first, second)[i % 2]
        response = _session().post(
            service.url(f"/api/users/{user}/segments"), json=changes[i], timeout=10
        )
        assert response.status_code == 200, response.text
        return response.json()["segments"]

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        seen = list(pool.map(send, range(len(changes))))
    final = first.user_segments(user)
    assert second.user_segments(user) == final
    rows = sql(
        pg_dsn,
        "SELECT slug, operation FROM segments.history WHERE user_id = $1 ORDER BY at, id",
        user,
    )
    for slug in slugs:
        ops = [r[1] for r in rows if r[0] == slug]
        assert all(a != b for a, b in itertools.pairwise(ops)), (slug, ops)
        assert ops[:1] in ([], ["add"])
        assert (slug in final) == (ops[-1:] == ["add"])
    # every response is a state of some serial order: the added slug held, the removed not
    for change, segments in zip(changes, seen, strict=True):
        assert change["add"][0] in segments and change["remove"][0] not in segments


def test_exit_statuses(procs, pg_dsn):
    bad = subprocess.run(
        [sys.executable, "-m", "actors.segments.cli", "-d", pg_dsn],
        env={"RUN_ADDRESS": "nonsense", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "RUN_ADDRESS" in bad.stderr
    unreachable = subprocess.run(
        [sys.executable, "-m", "actors.segments.cli", "-a", "127.0.0.1:1"],
        env={
            "DATABASE_URI": "postgresql://postgres@127.0.0.1:1/x",
            "SEGMENTS_DB_WAIT_S": "1",
            "PATH": "/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.strip().splitlines()[-1].startswith("segments: DATABASE_URI:")
    service = start(procs, pg_dsn)
    assert service.get("/healthz").status_code == 200
    twice = subprocess.run(  # the same address and run dir: refused, naming the first
        [sys.executable, "-m", "actors.segments.cli"],
        env={**service.env, "SEGMENTS_DB_WAIT_S": "5"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert twice.returncode == 1
    assert f"an instance on 127.0.0.1:{service.port} is already running" in twice.stderr
    assert procs.stop(service) is None  # SIGTERM: every child stops, exit 0


def test_says_it_is_ready_once_http_answers(procs, pg_dsn):
    service = start(procs, pg_dsn)
    assert len(service.wait_ready_line("segments")) == 1
    assert service.get("/healthz").status_code == 200
    assert "serving on" not in service.output()  # said before HTTP was up, once
