"""The operator tools as an operator runs them: `python -m actors.grades.cli ...` subprocesses.

One module-wide set of real processes (started in parallel, so the file stays
well under a minute): a bus with replicas 1 and 2 holding the same seeded
data, and standalone replicas (BUS_URL=none) that start empty, one per test
that writes to them. The retry behaviour of `grades load` is checked against a
small in-process HTTP server that answers 503 on purpose.
"""

from __future__ import annotations

import contextlib
import csv
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import ClassVar

import pytest

from actors.grades.backup import read_backup
from actors.grades.testing import Cluster, run_cli
from actors.runtime.testing import free_port, wait_until

CONVERGE_TIMEOUT_S = 30.0
FIELDS = ("postpaid_limit", "spp", "shipping_fee", "return_fee")
INT64_MAX = (1 << 63) - 1
TRICKY_USERS = ["comma,user", 'quote"user', "ünïcødé-user", "new\nline", " spaced "]


def read_file_rows(path: Path) -> dict[str, list[int]]:
    with open(path, "rb") as stream:
        _meta, batches = read_backup(stream)
        return {key: row for batch in batches for key, row in batch}


def values(rows: dict[str, list[int]]) -> dict[str, list[int]]:
    return {key: row[:4] for key, row in rows.items()}


def seed(replica) -> None:
    """Full and partial writes, extreme values, user ids that need CSV quoting."""
    for i in range(40):
        response = replica.set(
            f"user-{i}", postpaid_limit=i, spp=-i, shipping_fee=i * 1000, return_fee=INT64_MAX - i
        )
        assert response.status_code == 200, response.text
    for i in range(0, 40, 3):
        assert replica.set(f"user-{i}", spp=0).status_code == 200
    for i, user in enumerate(TRICKY_USERS):
        assert replica.set(user, spp=i + 1).status_code == 200, user


@pytest.fixture(scope="module")
def procs(tmp_path_factory):
    cluster = Cluster(tmp_path_factory.mktemp("cli"))
    bus = cluster.bus()
    names = {
        "r1": (1, bus),
        "r2": (2, bus),
        "load_target": (11, None),
        "csv_target": (12, None),
        "lone_a": (13, None),
        "lone_b": (14, None),
    }
    replicas = {name: cluster.replica(rid, rbus, wait=False) for name, (rid, rbus) in names.items()}
    for replica in replicas.values():
        replica.wait_ready()
    seed(replicas["r1"])
    r1, r2 = replicas["r1"], replicas["r2"]
    wait_until(
        lambda: r2.backup_rows() == r1.backup_rows(),
        CONVERGE_TIMEOUT_S,
        "replica 2 to hold the seeded rows",
    )
    yield replicas
    problems = cluster.stop_all()
    if problems:
        pytest.fail("\n".join(problems))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """The default backlog of 5 drops the loader's burst of connects (1 s SYN retries)."""


@contextlib.contextmanager
def serve(handler: type[http.server.BaseHTTPRequestHandler]):
    """An in-process HTTP server on a free port; yields its base URL."""
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- backup --------------------------------------------------------------------


def test_backup_writes_a_file_that_reads_back(procs, tmp_path):
    r1 = procs["r1"]
    target = tmp_path / "r1.csv.gz"
    result = run_cli("backup", "--from", r1.get_base, "-o", str(target))
    assert result.returncode == 0, result.stderr
    assert read_file_rows(target) == r1.backup_rows()
    assert not list(tmp_path.glob("*.part"))
    assert re.search(r"backup: [\d.]+ MB in [\d.]+ s \([\d.,]+ MB/s\)", result.stderr)
    assert f"{len(r1.backup_rows())} rows of replica 1" in result.stderr


def test_backup_without_output_uses_the_replicas_file_name(procs, tmp_path):
    result = run_cli("backup", "--from", procs["r2"].get_base, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [saved] = tmp_path.glob("grades-replica2-*.csv.gz")
    assert values(read_file_rows(saved)) == values(procs["r2"].backup_rows())


def test_backup_fails_clearly_and_leaves_no_file(procs, tmp_path):
    target = tmp_path / "out.csv.gz"
    unreachable = run_cli("backup", "--from", f"http://127.0.0.1:{free_port()}", "-o", str(target))
    assert unreachable.returncode == 2
    assert "unreachable" in unreachable.stderr
    wrong_port = run_cli(
        "backup", "--from", procs["r1"].set_url.rsplit("/", 1)[0], "-o", str(target)
    )
    assert wrong_port.returncode == 2
    assert "HTTP 404" in wrong_port.stderr
    assert list(tmp_path.iterdir()) == []


class TruncatedBackup(http.server.BaseHTTPRequestHandler):
    """GET /backup: the first half of a real backup, as a replica dying mid-stream sends."""

    body = b""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


def test_a_truncated_backup_is_an_error_not_a_file(procs, tmp_path):
    whole = tmp_path / "whole.csv.gz"
    assert run_cli("backup", "--from", procs["r1"].get_base, "-o", str(whole)).returncode == 0
    TruncatedBackup.body = whole.read_bytes()[: len(whole.read_bytes()) // 2]
    with serve(TruncatedBackup) as url:
        target = tmp_path / "out.csv.gz"
        result = run_cli("backup", "--from", url, "-o", str(target))
        assert result.returncode == 2
        assert "ended early" in result.stderr
        assert not target.exists() and not target.with_name("out.csv.gz.part").exists()
        compared = run_cli("verify", procs["r1"].get_base, url)
        assert compared.returncode == 2 and "grades verify: error:" in compared.stderr


# --- load ----------------------------------------------------------------------


def test_load_a_backup_into_an_empty_replica(procs, tmp_path):
    r1, target = procs["r1"], procs["load_target"]
    backup = tmp_path / "r1.csv.gz"
    assert run_cli("backup", "--from", r1.get_base, "-o", str(backup)).returncode == 0
    expected = r1.backup_rows()

    result = run_cli("load", str(backup), "--to", target.set_url.rsplit("/", 1)[0])

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"loaded {len(expected)} rows, 0 failures" in result.stdout
    assert re.search(r"[\d.]+ s, [\d,]+ rows/s", result.stdout)
    loaded = target.backup_rows()
    assert values(loaded) == values(expected)
    # a write through the API, not a restore: same values, new versions
    assert all(loaded[key][4:] != row[4:] for key, row in expected.items())
    same = run_cli("verify", r1.get_base, target.get_base)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "IDENTICAL" in same.stdout
    versions = run_cli("verify", "--versions", "--show", "2", r1.get_base, target.get_base)
    assert versions.returncode == 1
    assert f"{len(expected)} differ" in versions.stdout


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_load_a_csv_with_some_fields(procs, tmp_path):
    target = procs["csv_target"]
    assert target.set("csv-0", postpaid_limit=7, return_fee=9).status_code == 200
    rows = [["csv-0", 5, ""], ["csv-1", 6, 60], ["comma,user", "", 70]]
    rows += [["same-user", i, i] for i in range(300)]  # one user, many rows: the last wins
    path = write_csv(tmp_path / "partial.csv", ["user_id", "spp", "shipping_fee"], rows)

    result = run_cli("load", str(path), "--to", target.set_url)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"loaded {len(rows)} rows, 0 failures" in result.stdout
    assert target.record("csv-0") == {
        "user_id": "csv-0",
        "postpaid_limit": 7,
        "spp": 5,
        "shipping_fee": 0,
        "return_fee": 9,
    }
    assert target.record("csv-1")["shipping_fee"] == 60
    assert target.record("comma,user") == {
        "user_id": "comma,user",
        "postpaid_limit": 0,
        "spp": 0,
        "shipping_fee": 70,
        "return_fee": 0,
    }
    assert target.record("same-user")["spp"] == 299


def test_load_stops_loudly_on_a_4xx_or_a_bad_row(procs, tmp_path):
    target = procs["csv_target"]
    path = write_csv(
        tmp_path / "rows.csv", ["user_id", "spp"], [["bad-0", 1], ["bad-1", "twelve"], ["bad-2", 3]]
    )
    wrong_password = run_cli("load", str(path), "--to", target.set_url, GRADES_PASSWORD="wrong")
    assert wrong_password.returncode == 1
    assert re.search(r"STOPPED: line \d+ \(user_id 'bad-\d'\): HTTP 401", wrong_password.stderr)

    bad_value = run_cli("load", str(path), "--to", target.set_url)
    assert bad_value.returncode == 1
    assert "STOPPED: line 3: spp: 'twelve' is not an integer" in bad_value.stderr
    assert "loaded 1 rows" in bad_value.stdout  # the rows before the bad one, none after
    assert target.record("bad-0")["spp"] == 1 and target.record("bad-2") is None

    unknown_column = write_csv(tmp_path / "cols.csv", ["user_id", "sp"], [["x", 1]])
    refused = run_cli("load", str(unknown_column), "--to", target.set_url)
    assert refused.returncode == 2 and "unknown column(s) ['sp']" in refused.stderr

    no_credentials = run_cli("load", str(path), "--to", target.set_url, GRADES_USER="")
    assert no_credentials.returncode == 2 and "no credentials" in no_credentials.stderr


class FlakySetter(http.server.BaseHTTPRequestHandler):
    """POST /set: 503 + Retry-After the first time a user is seen, then 200.

    User "always-busy" gets 503 every time. Odd replies are chunked and every
    fifth closes the connection, to exercise the loader's HTTP reading.
    """

    protocol_version = "HTTP/1.1"
    attempts: ClassVar[dict[str, int]] = {}
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        user = body["user_id"]
        with self.lock:
            seen = self.attempts[user] = self.attempts.get(user, 0) + 1
            total = sum(self.attempts.values())
        if seen == 1 or user == "always-busy":
            self._reply(503, {"error": "catching up"}, {"Retry-After": "1"})
        else:
            self._reply(200, {"result": body}, {}, chunked=total % 2 == 1, close=total % 5 == 0)

    def _reply(
        self, status: int, payload: dict, headers: dict, chunked: bool = False, close: bool = False
    ) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        else:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)


@pytest.fixture
def flaky_setter():
    FlakySetter.attempts = {}
    with serve(FlakySetter) as url:
        yield url


def test_load_retries_503_after_retry_after(flaky_setter, tmp_path):
    users = [f"flaky-{i}" for i in range(16)]
    path = write_csv(tmp_path / "rows.csv", ["user_id", "spp"], [[u, 1] for u in users])
    started = time.monotonic()
    result = run_cli("load", str(path), "--to", flaky_setter, "--connections", "64")
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started >= 1.0  # it waited for Retry-After
    assert "loaded 16 rows, 0 failures" in result.stdout
    assert FlakySetter.attempts == {user: 2 for user in users}

    busy = write_csv(tmp_path / "busy.csv", ["user_id", "spp"], [["always-busy", 1]])
    result = run_cli("load", str(busy), "--to", flaky_setter, "--attempts", "2")
    assert result.returncode == 1
    assert "loaded 0 rows, 1 failures" in result.stdout
    assert (
        "line 2 (user_id 'always-busy'): HTTP 503: catching up (after 2 attempts)" in result.stderr
    )


# --- verify --------------------------------------------------------------------


def test_verify_identical_replicas(procs):
    r1, r2 = procs["r1"], procs["r2"]
    for extra in ([], ["--versions"]):
        result = run_cli("verify", *extra, r1.get_base, r2.get_base)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "verify: IDENTICAL: 2 replicas" in result.stdout
        assert "0 missing" in result.stdout and "0 differ" in result.stdout


def test_verify_prints_the_differences(procs):
    a, b = procs["lone_a"], procs["lone_b"]
    assert run_cli("verify", a.get_base, b.get_base).returncode == 0  # both empty
    assert a.set("only-on-a", spp=1).status_code == 200
    assert a.set("both", spp=1, return_fee=5).status_code == 200
    assert b.set("both", spp=2, return_fee=5).status_code == 200

    result = run_cli("verify", a.get_base, b.get_base)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"1 missing on {b.get_base}" in result.stdout
    assert f"missing on {b.get_base}: 'only-on-a' postpaid_limit=0 spp=1" in result.stdout
    assert "differs: 'both': spp 1 != 2" in result.stdout
    assert "return_fee" not in result.stdout.split("differs: 'both'")[1].splitlines()[0]
    assert "verify: DIFFERENT: 2 differences" in result.stdout

    limited = run_cli("verify", "--show", "1", a.get_base, b.get_base)
    assert limited.returncode == 1 and "... and 1 more" in limited.stdout


def test_verify_unreachable_is_an_error(procs):
    result = run_cli("verify", procs["r1"].get_base, f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert "grades verify: error:" in result.stderr and "unreachable" in result.stderr


# --- status --------------------------------------------------------------------


def test_status_prints_an_aligned_table(procs):
    r1, lone = procs["r1"], procs["lone_a"]
    result = run_cli("status", r1.get_base, lone.get_base)
    assert result.returncode == 0, result.stdout + result.stderr
    header, row1, row2 = result.stdout.splitlines()
    assert header.split() == ["replica", "ready", "phase", "rows", "position", "bus_up"]
    assert row1.split()[:3] == [r1.get_base, "yes", "ready"] and row1.split()[-1] == "yes"
    assert row2.split()[-1] == "standalone"
    for column in ("ready", "phase", "bus_up"):  # left-aligned text columns line up
        assert row1[header.index(column)] != " " and row2[header.index(column)] != " "
    for column in ("rows", "position"):  # numbers are right-aligned under their header
        end = header.index(column) + len(column) - 1
        assert row1[end].isdigit() and row2[end].isdigit()

    down = f"http://127.0.0.1:{free_port()}"
    result = run_cli("status", r1.get_base, down)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[2].split()[:3] == [down, "no", "unreachable"]
    assert lines[3].strip().startswith(f"{down}:")


@pytest.mark.parametrize(
    "env, says",
    [
        ({"REPLICA_ID": "abc"}, "REPLICA_ID='abc' is not an integer"),
        ({"SETTER_PORT": "70000"}, "SETTER_PORT=70000 is outside 1..65535"),
        (
            {"BUS_RETAIN_SILENT_S": "600"},
            "BUS_RETAIN_SILENT_S=600 must be over twice GRADES_SNAPSHOT_EVERY_S=300: "
            "a live replica reports its position only that often",
        ),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_naming_it(tmp_path, env, says):
    result = subprocess.run(
        [sys.executable, "-m", "actors.grades.cli", "replica"],
        env={**os.environ, "GRADES_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"grades: configuration error: {says}"
