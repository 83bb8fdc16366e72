"""The packed backup (actors.grades.backup_packed): what a restoring replica asks a peer for.

Round trips and damage detection of the format, and a restore from a peer that
sends the CSV instead (test_http.py checks that /backup packs only when asked).
"""

from __future__ import annotations

import http.server
import io
import queue
import threading

import msgpack
import pytest

from actors.grades import backup_packed
from actors.grades.backup import BackupEncoder, BackupError
from actors.grades.backup_packed import MEDIA_TYPE, PackedEncoder, read_packed_blocks
from actors.grades.records import pack_rows
from actors.grades.restore import BackupDownload
from actors.runtime.testing import wait_until
from tests.grades.backup_samples import AWKWARD_IDS, GENERATED_AT, META, make_row


def encode(meta: dict, chunks: list[list], encoder=None) -> bytes:
    encoder = encoder or PackedEncoder()
    parts = [encoder.header(meta)]
    for rows in chunks:
        parts.append(
            encoder.columns([row[0] for row in rows], pack_rows([row[1:] for row in rows]))
        )
    return b"".join([*parts, encoder.finish()])


def read_all(data: bytes) -> tuple[dict, list]:
    meta, blocks = read_packed_blocks(io.BytesIO(data))
    return meta, [row for block in blocks for row in block.rows()]


def test_round_trip_keeps_meta_rows_and_order_across_chunks():
    chunks = [[make_row(i, f"u{i}") for i in range(start, start + 3)] for start in (0, 3, 6)]
    meta, rows = read_all(encode(META, chunks))
    assert meta == {"generated_at": GENERATED_AT, **META, "format": backup_packed.FORMAT}
    assert rows == [[row[0], row[1:]] for chunk in chunks for row in chunk]


def test_awkward_user_ids_round_trip():
    chunk = [make_row(i, user_id) for i, user_id in enumerate(AWKWARD_IDS)]
    _, rows = read_all(encode(META, [chunk]))
    assert [row[0] for row in rows] == AWKWARD_IDS


def test_a_frame_whose_rows_have_alike_versions_holds_one_version_a_row():
    alike = [["a", 1, 2, 3, 4, 9, 9, 9, 9], ["b", 5, 6, 7, 8, 11, 11, 11, 11]]
    split = [["c", 1, 2, 3, 4, 9, 9, 9, 9], ["d", 5, 6, 7, 8, 11, 12, 11, 11]]
    meta, blocks = read_packed_blocks(io.BytesIO(encode(META, [alike, split])))
    [first, second] = list(blocks)
    assert first.keys == ["a", "b"]
    assert list(first.values) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert list(first.versions) == [9, 11]
    assert list(second.versions) == [9, 9, 9, 9, 11, 12, 11, 11]


def test_an_empty_table_round_trips():
    meta, rows = read_all(encode({**META, "rows": 0}, []))
    assert (meta["rows"], rows) == (0, [])


def test_a_stream_cut_before_its_end_marker_is_damaged():
    data = encode(META, [[make_row(i, f"u{i}") for i in range(50)]])
    end = len(msgpack.packb(50))
    for cut in (len(data) - end, len(data) - end - 7):
        _, blocks = read_packed_blocks(io.BytesIO(data[:cut]))
        with pytest.raises(BackupError, match="cut"):
            list(blocks)


def test_an_end_marker_that_disagrees_with_the_rows_is_damaged():
    data = encode(META, [[make_row(1, "u1")]])[: -len(msgpack.packb(1))] + msgpack.packb(2)
    _, blocks = read_packed_blocks(io.BytesIO(data))
    with pytest.raises(BackupError, match="ends after 1 rows, says 2"):
        list(blocks)


@pytest.mark.parametrize(
    "frame, problem",
    [
        ([["a"], b"\0" * 31, b"\0" * 8], "1 user_ids, 31 bytes of values and 8 of versions"),
        ([["a"], b"\0" * 32, b"\0" * 16], "1 user_ids, 32 bytes of values and 16 of versions"),
        ([["a", 7], b"\0" * 64, b"\0" * 16], "not strings"),
        ([[""], b"\0" * 32, b"\0" * 8], "empty or too long"),
        ([["x" * 129], b"\0" * 32, b"\0" * 8], "empty or too long"),
        ("text", "not a \\[user_ids, values, versions\\] frame"),
        ([["a"], b"\0" * 32], "not a \\[user_ids, values, versions\\] frame"),
        ([["a"], pack_rows([[1, 2, 3, 4]]), pack_rows([[5, 5, -1, 5]])], "negative version"),
    ],
)
def test_a_bad_frame_is_named(frame, problem):
    data = PackedEncoder().header(META) + msgpack.packb(frame) + msgpack.packb(1)
    _, blocks = read_packed_blocks(io.BytesIO(data))
    with pytest.raises(BackupError, match=problem):
        list(blocks)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        msgpack.packb({**META, "format": "grades-backup/1"}),
        msgpack.packb({**META, "format": backup_packed.FORMAT, "position": "1"}),
        msgpack.packb([1, 2]),
        b"\xc1garbage",
    ],
)
def test_what_is_not_a_packed_backup_is_refused_at_once(data):
    with pytest.raises(BackupError):
        read_packed_blocks(io.BytesIO(data))


class _CsvOnlyPeer(http.server.ThreadingHTTPServer):
    """A peer that knows only the gzip'd CSV: it answers every /backup with it."""

    def __init__(self, body: bytes):
        self.body = body
        self.accepts: list[str] = []
        super().__init__(("127.0.0.1", 0), _CsvOnlyHandler)


class _CsvOnlyHandler(http.server.BaseHTTPRequestHandler):
    server: _CsvOnlyPeer

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.server.accepts.append(self.headers.get("Accept", ""))
        self.send_response(200)
        self.send_header("Content-Type", "application/gzip")
        self.send_header("Content-Length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_restore_reads_the_csv_of_a_peer_that_does_not_pack():
    rows = [make_row(i, f"csv-{i}") for i in range(1000)]
    encoder = BackupEncoder()
    body = encoder.header(META) + encoder.rows(rows) + encoder.finish()
    with _CsvOnlyPeer(body) as peer:
        threading.Thread(target=peer.serve_forever, daemon=True).start()
        try:
            download = BackupDownload(f"http://127.0.0.1:{peer.server_address[1]}")
            download.start()
            events: list = []

            def finished() -> bool:
                try:
                    events.append(download.events.get(timeout=0.2))
                except queue.Empty:
                    return False
                return events[-1][0] in ("done", "failed")

            wait_until(finished, 20, "the download to finish")
        finally:
            peer.shutdown()
    assert peer.accepts and MEDIA_TYPE in peer.accepts[0]
    assert events[0][0] == "meta" and events[0][1]["format"] == "grades-backup/1"
    loaded = [row for kind, block in events if kind == "rows" for row in block.rows()]
    assert loaded == [[row[0], row[1:]] for row in rows]
    assert events[-1] == ("done", 1000)
