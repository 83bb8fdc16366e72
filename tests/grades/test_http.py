"""One replica over real HTTP: statuses, merge rules, concurrency, backup, restarts."""

from __future__ import annotations

import gzip
import io
import socket
import threading
import time

import psutil
import pytest
import requests

from actors.grades.backup import COLUMNS, parse_header_line, read_backup
from actors.grades.backup_packed import MEDIA_TYPE, read_packed_blocks
from actors.grades.testing import AUTH
from actors.runtime.testing import wait_until

FULL = {"postpaid_limit": 1111, "spp": 23123, "shipping_fee": 333, "return_fee": 444}


@pytest.fixture(scope="module")
def replica(tmp_path_factory):
    """A standalone replica shared by the read-mostly tests of this module."""
    from actors.grades.testing import Cluster

    cluster = Cluster(tmp_path_factory.mktemp("standalone"))
    replica = cluster.replica(1, bus=None)
    yield replica
    problems = cluster.stop_all()
    assert not problems, problems


def post(replica, body: bytes | str, headers=None, auth=AUTH, path="/set"):
    url = replica.set_url.rsplit("/", 1)[0] + path
    headers = {"Content-Type": "application/json", **(headers or {})}
    return requests.post(url, data=body, headers=headers, auth=auth, timeout=10)


def test_set_then_get_returns_the_record(replica):
    response = replica.set("3333", **FULL)
    assert response.status_code == 200
    assert response.json() == {"result": {"user_id": "3333", **FULL}}
    assert replica.record("3333") == {"user_id": "3333", **FULL}


def test_set_with_trailing_slash_works(replica):
    response = post(replica, '{"user_id": "slash", "spp": 5}', path="/set/")
    assert response.status_code == 200
    assert replica.record("slash")["spp"] == 5


def test_partial_sets_merge_and_zero_is_a_value(replica):
    assert replica.set("partial", spp=7).json()["result"] == {
        "user_id": "partial",
        "postpaid_limit": 0,
        "spp": 7,
        "shipping_fee": 0,
        "return_fee": 0,
    }
    replica.set("partial", shipping_fee=9, return_fee=-3)
    replica.set("partial", spp=0)
    assert replica.record("partial") == {
        "user_id": "partial",
        "postpaid_limit": 0,
        "spp": 0,
        "shipping_fee": 9,
        "return_fee": -3,
    }


def test_get_of_unknown_user_is_404_json(replica):
    response = replica.get("nobody-here")
    assert response.status_code == 404
    assert "user_id" in response.json()["error"]


def test_get_without_user_id_is_400(replica):
    response = requests.get(f"{replica.get_base}/get", timeout=5)
    assert response.status_code == 400
    assert response.json()["error"].startswith("user_id")


@pytest.mark.parametrize(
    "body, field",
    [
        ("{not json", "body"),
        ("[1, 2]", "body"),
        ('"just a string"', "body"),
        ('{"spp": 1}', "user_id"),
        ('{"user_id": ""}', "user_id"),
        ('{"user_id": 5}', "user_id"),
        ('{"user_id": "' + "x" * 129 + '"}', "user_id"),
        ('{"user_id": "a", "spp": 1.5}', "spp"),
        ('{"user_id": "a", "spp": "7"}', "spp"),
        ('{"user_id": "a", "spp": true}', "spp"),
        ('{"user_id": "a", "spp": null}', "spp"),
        ('{"user_id": "a", "spp": 9223372036854775808}', "spp"),
        ('{"user_id": "a", "return_fee": -9223372036854775809}', "return_fee"),
        ('{"user_id": "a", "bonus": 1}', "bonus"),
        ('{"user_id": "a", "spp": 1, "spp": 2}', "spp"),
    ],
)
def test_bad_bodies_are_400_naming_the_field_and_change_nothing(replica, body, field):
    replica.set("a", spp=42)
    response = post(replica, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(field), response.json()
    assert replica.record("a")["spp"] == 42


def test_invalid_utf8_is_400(replica):
    response = post(replica, b'{"user_id": "\xff\xfe"}')
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]


@pytest.mark.parametrize("auth", [None, ("test", "wrong"), ("wrong", "test"), ("", "")])
def test_missing_or_wrong_credentials_are_401_and_change_nothing(replica, auth):
    replica.set("guarded", spp=1)
    response = post(replica, '{"user_id": "guarded", "spp": 2}', auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.json() == {"error": "missing or wrong credentials"}
    assert replica.record("guarded")["spp"] == 1


def test_malformed_authorization_header_is_401(replica):
    response = post(replica, '{"user_id": "x"}', headers={"Authorization": "Basic !!!"}, auth=None)
    assert response.status_code == 401


def test_unknown_routes_are_404_and_routes_on_the_wrong_port_too(replica):
    assert requests.get(f"{replica.get_base}/nothing", timeout=5).status_code == 404
    assert requests.get(f"{replica.get_base}/set", timeout=5).status_code == 404
    setter = replica.set_url.rsplit("/", 1)[0]
    assert requests.get(f"{setter}/get?user_id=3333", timeout=5).status_code == 404
    assert requests.get(f"{setter}/backup", timeout=5).status_code == 404
    assert "error" in requests.get(f"{setter}/x", timeout=5).json()
    # one gunicorn serves both ports: a good set sent to the getter port is still refused
    wrong_port = requests.post(
        f"{replica.get_base}/set", json={"user_id": "wrong-port", "spp": 1}, auth=AUTH, timeout=5
    )
    assert wrong_port.status_code == 404
    assert replica.get("wrong-port").status_code == 404


def test_wrong_methods_are_405(replica):
    assert requests.get(replica.set_url, timeout=5).status_code == 405
    assert requests.post(f"{replica.get_base}/get?user_id=1", timeout=5).status_code == 405
    response = requests.delete(f"{replica.get_base}/backup", timeout=5)
    assert response.status_code == 405
    assert "error" in response.json()


def test_body_over_the_limit_is_413_with_or_without_length(replica):
    big = '{"user_id": "big", "spp": 1, "pad": "' + "x" * 5000 + '"}'
    assert post(replica, big).status_code == 413

    def chunks():
        for _ in range(10):
            yield b" " * 1000
        yield b'{"user_id": "big"}'

    response = requests.post(
        replica.set_url,
        data=chunks(),
        auth=AUTH,
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert replica.record("big") is None


def test_an_8_mib_body_is_413_not_431(replica):
    """The head bound counts the request line and headers only, not body bytes that
    arrive in the same read (issue 14: an 8 MiB body was answered 431)."""
    body = b'{"user_id": "huge", "pad": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    try:
        response = requests.post(
            replica.set_url,
            data=body,
            auth=AUTH,
            timeout=30,
            headers={"Content-Type": "application/json"},
        )
    except requests.ConnectionError:
        pytest.fail("the server dropped the connection instead of answering 413")
    assert response.status_code == 413, response.text
    assert "body" in response.json()["error"]
    assert replica.record("huge") is None


def test_a_non_json_content_type_is_415(replica):
    response = post(replica, '{"user_id": "ct"}', headers={"Content-Type": "text/plain"})
    assert response.status_code == 415
    assert replica.record("ct") is None


def test_concurrent_partial_sets_lose_no_field(replica):
    """4 clients x 1000 sets, each client owning one field of the same 50 users."""
    fields = list(FULL)
    errors = []

    def writer(field: str):
        session = requests.Session()
        for i in range(1000):
            response = replica.set(f"race-{i % 50}", session=session, **{field: i})
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=writer, args=(field,)) for field in fields]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    for user in range(50):
        record = replica.record(f"race-{user}")
        last = 950 + user  # the last i with i % 50 == user
        assert record == {"user_id": f"race-{user}", **{f: last for f in fields}}


def test_backup_is_a_streamed_gzip_csv_with_time_header(replica):
    replica.set('backup,me "quoted"', **FULL)
    response = requests.get(f"{replica.get_base}/backup", timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/gzip"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and ".csv.gz" in disposition
    text = gzip.decompress(response.content).decode()
    first, header = text.splitlines()[:2]
    meta = parse_header_line(first)
    assert abs(meta["generated_at_ms"] / 1000 - time.time()) < 60
    assert first.startswith("generated_at=")
    assert header == ",".join(COLUMNS)
    _, batches = read_backup(io.BytesIO(response.content))
    rows = {key: row for batch in batches for key, row in batch}
    assert rows['backup,me "quoted"'][:4] == list(FULL.values())


@pytest.mark.parametrize("accept", [None, "*/*", "application/gzip", f"{MEDIA_TYPE};q=0"])
def test_backup_is_the_gzip_csv_unless_the_packed_form_is_named(replica, accept):
    headers = {"Accept": accept} if accept else {}
    response = requests.get(f"{replica.get_base}/backup", headers=headers, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/gzip"


@pytest.mark.parametrize("accept", [MEDIA_TYPE, f"{MEDIA_TYPE}, application/gzip;q=0.5"])
def test_backup_in_the_packed_form_holds_the_rows_the_csv_holds(replica, accept):
    replica.set('packed,me "quoted"', **FULL)
    replica.set("packed-partial", spp=5)
    response = requests.get(f"{replica.get_base}/backup", headers={"Accept": accept}, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == MEDIA_TYPE
    meta, rows = read_packed(response.content)
    assert meta["rows"] == len(rows) >= 2
    by_key = dict(rows)
    assert by_key['packed,me "quoted"'][:4] == list(FULL.values())
    assert by_key["packed-partial"][:4] == [0, 5, 0, 0]
    assert by_key["packed-partial"][5] > 0 == by_key["packed-partial"][4]


def read_packed(data: bytes) -> tuple[dict, list]:
    meta, blocks = read_packed_blocks(io.BytesIO(data))
    return meta, [row for block in blocks for row in block.rows()]


def test_health_and_readiness(replica):
    assert requests.get(f"{replica.get_base}/healthz", timeout=5).status_code == 200
    ready = requests.get(f"{replica.get_base}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["phase"] == "ready"


def test_storage_actor_killed_is_restarted_by_the_replica(cluster):
    replica = cluster.replica(1, bus=None)
    storage = replica.child("storage")
    storage.kill()
    storage.wait(timeout=5)
    wait_until(
        lambda: replica.set("after-kill", spp=1).status_code == 200,
        20,
        "a set to succeed after the storage actor was killed",
    )
    assert replica.child("storage").pid != storage.pid
    assert "restarting in" in replica.output()


def test_a_gunicorn_master_killed_takes_its_workers_with_it(cluster):
    """Orphaned workers would keep the ports and the restarted master could never bind."""
    replica = cluster.replica(1, bus=None)
    master = replica.child("http")
    workers = master.children()
    assert workers
    master.kill()
    alive = psutil.wait_procs(workers, timeout=10)[1]
    assert not alive, f"workers outlived their master: {alive}"

    def served() -> bool:
        try:
            return replica.set("after-master-kill", spp=1).status_code == 200
        except requests.RequestException:  # refused until the new master listens
            return False

    wait_until(served, 20, "a set through the restarted HTTP server")
    assert replica.child("http").pid != master.pid


def test_backup_of_200k_rows_keeps_getter_memory_flat(cluster):
    replica = cluster.replica(1, bus=None)
    from actors.grades.messages import Set
    from actors.runtime.client import Client

    with Client(replica.storage_endpoint) as client:
        for start in range(0, 200_000, 1000):
            ids = [
                client.send(Set(f"user-{i}", [i, i, i, i], 0)) for i in range(start, start + 1000)
            ]
            for _ in ids:
                client.receive()
    getter_workers = replica.workers()
    assert getter_workers, "the replica runs at least one HTTP worker"
    before = sum(w.memory_info().rss for w in getter_workers)
    peak = before
    with requests.get(f"{replica.get_base}/backup", stream=True, timeout=60) as response:
        assert response.status_code == 200
        compressed = io.BytesIO()
        for chunk in response.iter_content(64 * 1024):
            compressed.write(chunk)
            peak = max(peak, sum(w.memory_info().rss for w in getter_workers))
            time.sleep(0.001)  # a slowish reader: the stream must not run ahead into memory
    _, batches = read_backup(io.BytesIO(compressed.getvalue()))
    assert sum(len(b) for b in batches) >= 200_000
    assert peak - before < 40 * 1024 * 1024, f"getter grew {(peak - before) >> 20} MiB"


def test_getter_answers_503_while_restoring(cluster):
    """A peer that accepts the connection but never answers keeps us restoring."""
    with socket.socket() as silent_peer:
        silent_peer.bind(("127.0.0.1", 0))
        silent_peer.listen(8)
        port = silent_peer.getsockname()[1]
        bus = cluster.bus()
        replica = cluster.replica(2, bus, next_url=f"http://127.0.0.1:{port}", wait=False)
        replica.wait_http_up(replica.get_base)
        [response] = wait_until(lambda: _503(replica.get("x")), 20, "a 503 from /get")
        assert int(response.headers["Retry-After"]) >= 1
        assert "restoring" in response.json()["error"]
        set_response = replica.set("x", spp=1)
        assert set_response.status_code == 503
        assert requests.get(f"{replica.get_base}/readyz", timeout=5).status_code == 503


def _503(response):
    """The response if it is a 503 (a Response's own truth value is response.ok)."""
    return [response] if response.status_code == 503 else None


def test_set_without_a_bus_is_503_with_retry_after(cluster):
    bus = cluster.bus(start=False)  # addresses nobody listens on
    replica = cluster.replica(1, bus, wait=False)
    replica.wait_http_up(replica.set_url.rsplit("/", 1)[0])
    [response] = wait_until(lambda: _503(replica.set("nobus", spp=1)), 20, "a 503 from /set")
    assert int(response.headers["Retry-After"]) >= 1
    assert psutil.pid_exists(replica.process.pid)


def test_every_set_answers_with_a_request_id(replica):
    fresh = replica.set("rid", spp=1)
    assert len(fresh.headers["X-Request-Id"]) == 16
    given = requests.post(
        replica.set_url,
        json={"user_id": "rid"},
        auth=AUTH,
        timeout=5,
        headers={"X-Request-Id": "client-42"},
    )
    assert given.headers["X-Request-Id"] == "client-42"
    odd = requests.post(
        replica.set_url,
        json={"user_id": "rid"},
        auth=AUTH,
        timeout=5,
        headers={"X-Request-Id": "bad id\twith junk"},
    )
    assert odd.headers["X-Request-Id"] != "bad id\twith junk"


def test_json_logs_are_one_object_per_line(cluster):
    import json

    replica = cluster.replica(1, bus=None, LOG_FORMAT="json")
    lines = [line for line in replica.output().splitlines() if line.strip()]
    ours = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(entry["logger"] == "storage[1]" and "ready" in entry["msg"] for entry in ours)
    assert all({"ts", "level", "logger", "msg"} <= set(entry) for entry in ours)
    assert not [line for line in lines if "storage[1]" in line and not line.startswith("{")]
