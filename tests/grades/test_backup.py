"""Tests for actors.grades.backup: gzip'd CSV encoding, parsing and damage detection."""

from __future__ import annotations

import gzip
import io

import pytest

from actors.grades.backup import (
    COLUMNS,
    FORMAT,
    BackupEncoder,
    BackupError,
    backup_filename,
    header_line,
    parse_header_line,
    read_backup,
    read_backup_blocks,
)
from tests.grades.backup_samples import AWKWARD_IDS, GENERATED_AT, META, make_row


def encode(meta: dict, chunks: list[list]) -> bytes:
    encoder = BackupEncoder()
    parts = [encoder.header(meta)]
    parts.extend(encoder.rows(chunk) for chunk in chunks)
    parts.append(encoder.finish())
    return b"".join(parts)


def read_all(data: bytes) -> tuple[dict, list]:
    meta, batches = read_backup(io.BytesIO(data))
    return meta, [row for batch in batches for row in batch]


def gzip_text(text: str) -> bytes:
    return gzip.compress(text.encode("utf-8"))


def valid_prefix() -> str:
    return header_line(META) + ",".join(COLUMNS) + "\n"


# --- round trip ----------------------------------------------------------------


def test_round_trip_in_several_chunks_keeps_meta_and_rows():
    rows = [make_row(i, user_id) for i, user_id in enumerate(AWKWARD_IDS)]
    data = encode(META, [rows[:1], [], rows[1:5], rows[5:]])

    meta, got = read_all(data)

    assert meta == {**META, "generated_at": GENERATED_AT, "format": FORMAT}
    assert got == [[row[0], row[1:]] for row in rows]


def test_round_trip_meta_int_keys_are_ints():
    meta, _ = read_all(encode(META, []))

    for key in ("generated_at_ms", "position", "replica_id", "hlc", "rows"):
        assert type(meta[key]) is int
    assert meta["log_id"] == META["log_id"]


@pytest.mark.parametrize("user_id", AWKWARD_IDS)
def test_awkward_user_id_round_trips_alone(user_id):
    _, got = read_all(encode(META, [[make_row(7, user_id)]]))

    assert got == [[user_id, make_row(7, user_id)[1:]]]


@pytest.mark.parametrize("user_id", ["carriage\rreturn", "\r", "end\r"])
def test_user_id_with_a_bare_carriage_return_round_trips(user_id):
    _, got = read_all(encode(META, [[make_row(1, user_id)]]))

    assert got == [[user_id, make_row(1, user_id)[1:]]]


def test_empty_table_round_trips():
    meta, batches = read_backup(io.BytesIO(encode({**META, "rows": 0}, [])))

    assert meta["rows"] == 0
    assert list(batches) == []


def test_encoder_output_is_a_single_valid_gzip_stream():
    data = encode(META, [[make_row(1, "u")]])

    lines = gzip.decompress(data).decode().splitlines()

    assert lines[0] == header_line(META).rstrip("\r\n")
    assert lines[1] == ",".join(COLUMNS)
    assert len(lines) == 3


def test_many_rows_come_back_in_order_across_batches():
    rows = [make_row(i, f"user-{i}") for i in range(25_000)]
    meta, batches = read_backup(io.BytesIO(encode(META, [rows[:12_345], rows[12_345:]])))

    got = list(batches)

    assert len(got) > 1
    assert [row for batch in got for row in batch] == [[r[0], r[1:]] for r in rows]


# --- header line -----------------------------------------------------------------


def test_header_line_starts_with_iso_time_and_ends_with_format():
    line = header_line(META)

    assert line.startswith(f"generated_at={GENERATED_AT},")
    assert line.endswith(f",format={FORMAT}\r\n")


def test_parse_header_line_inverts_header_line():
    assert parse_header_line(header_line(META)) == {
        **META,
        "generated_at": GENERATED_AT,
        "format": FORMAT,
    }


def test_iso_time_pads_milliseconds():
    line = header_line({**META, "generated_at_ms": 1_790_000_000_007})

    assert "generated_at=2026-09-21T14:13:20.007Z," in line


def test_backup_filename_names_replica_and_time():
    assert backup_filename(META) == "grades-replica2-20260921T141320123Z.csv.gz"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "\n",
        "just some text",
        header_line(META).replace(FORMAT, "grades-backup/2"),
        header_line(META).replace(FORMAT, ""),
        header_line(META).replace(f",format={FORMAT}", ""),
        header_line(META).replace("position=1234,", ""),
        header_line(META).replace("rows=3", "rows=three"),
        header_line(META).replace("hlc=", "hlc_=").replace(",hlc_=", ",x,hlc="),
        "format=grades-backup/1",
    ],
)
def test_parse_header_line_rejects_bad_line_with_backup_error(line):
    with pytest.raises(BackupError):
        parse_header_line(line)


@pytest.mark.parametrize("key", ["generated_at_ms", "position", "replica_id", "hlc", "rows"])
def test_parse_header_line_rejects_each_missing_int_key(key):
    meta = {k: v for k, v in META.items() if k != key}
    line = ",".join(f"{k}={v}" for k, v in {**meta, "format": FORMAT}.items())

    with pytest.raises(BackupError, match=key):
        parse_header_line(line)


# --- damage --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"not gzip at all", b"PK\x03\x04zipfile", b"\x1f\x8b\x08\x00"]
)
def test_read_backup_rejects_non_gzip_bytes_itself(data):
    with pytest.raises(BackupError):
        read_backup(io.BytesIO(data))


def test_read_backup_rejects_gzip_of_non_utf8():
    with pytest.raises(BackupError):
        read_backup(io.BytesIO(gzip.compress(b"\xff\xfe\x00garbage\n")))


def test_read_backup_rejects_a_wrong_column_header():
    data = gzip_text(header_line(META) + "user_id,spp\n")

    with pytest.raises(BackupError):
        read_backup(io.BytesIO(data))


def test_read_backup_rejects_a_missing_column_header():
    with pytest.raises(BackupError):
        read_backup(io.BytesIO(gzip_text(header_line(META))))


def test_truncated_gzip_stream_raises_backup_error_when_iterated():
    rows = [make_row(i, f"user-{i}") for i in range(2_000)]
    data = encode(META, [rows])
    meta, batches = read_backup(io.BytesIO(data[: len(data) - 20]))

    assert meta["position"] == META["position"]
    with pytest.raises(BackupError):
        list(batches)


def test_stream_without_finish_raises_backup_error():
    encoder = BackupEncoder()
    rows = [make_row(i, f"user-{i}") for i in range(2_000)]
    data = encoder.header(META) + encoder.rows(rows)  # finish() never called

    with pytest.raises(BackupError):
        _, batches = read_backup(io.BytesIO(data))
        list(batches)


@pytest.mark.parametrize("cut", [1, 10, 30])
def test_stream_cut_inside_the_header_raises_backup_error(cut):
    data = encode(META, [[make_row(1, "u")]])

    with pytest.raises(BackupError):
        meta, batches = read_backup(io.BytesIO(data[:cut]))
        list(batches)


@pytest.mark.parametrize(
    "row",
    [
        "u,1,2,3,4,5,6,7\n",  # 8 columns
        "u,1,2,3,4,5,6,7,8,9\n",  # 10 columns
        "u\n",
        '"a,b",1,2,3,4,5,6,7\n',
    ],
)
def test_row_with_wrong_column_count_raises_backup_error(row):
    _, batches = read_backup(io.BytesIO(gzip_text(valid_prefix() + row)))

    with pytest.raises(BackupError, match="columns"):
        list(batches)


@pytest.mark.parametrize(
    "row", ["u,1,2,x,4,5,6,7,8\n", "u,1,2,3,4,5,6,7,1.5\n", "u,,2,3,4,5,6,7,8\n"]
)
def test_row_with_a_non_integer_raises_backup_error(row):
    _, batches = read_backup(io.BytesIO(gzip_text(valid_prefix() + row)))

    with pytest.raises(BackupError, match="non-integer"):
        list(batches)


@pytest.mark.parametrize(
    "row, problem",
    [
        (f"u,{2**63},2,3,4,5,6,7,8\n", "64-bit"),
        (f"u,1,2,3,{-(2**63) - 1},5,6,7,8\n", "64-bit"),
        (f"u,1,2,3,4,5,6,7,{2**63}\n", "64-bit"),
        ("u,1,2,3,4,5,-6,7,8\n", "negative version"),
        ("u,1,2,3,4,-5,-5,-5,-5\n", "negative version"),
    ],
)
def test_row_out_of_range_raises_backup_error_naming_its_row(row, problem):
    text = valid_prefix() + "a,1,2,3,4,5,5,5,5\n" + row
    _, batches = read_backup(io.BytesIO(gzip_text(text)))

    with pytest.raises(BackupError, match=f"row 4: .*{problem}"):
        list(batches)


def test_blocks_hold_one_version_a_row_where_the_four_are_written_alike():
    shared = "a,1,2,3,4,9,9,9,9\r\nb,5,6,7,8,10,10,10,10\r\n"
    split = "a,1,2,3,4,9,9,9,9\r\nb,5,6,7,8,10,010,10,10\r\n"  # equal ints, unequal text

    for text, versions in [(shared, [9, 10]), (split, [9] * 4 + [10] * 4)]:
        _, blocks = read_backup_blocks(io.BytesIO(gzip_text(valid_prefix() + text)))
        [block] = list(blocks)
        assert block.keys == ["a", "b"]
        assert block.values.tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
        assert block.versions.tolist() == versions


def test_a_last_line_without_its_line_break_is_read():
    text = valid_prefix() + "a,1,2,3,4,5,6,7,8\r\nb,1,2,3,4,5,6,7,8"

    _, got = read_all(gzip_text(text))

    assert got == [["a", [1, 2, 3, 4, 5, 6, 7, 8]], ["b", [1, 2, 3, 4, 5, 6, 7, 8]]]


@pytest.mark.parametrize("user_id", ["", "x" * 129, "é" * 65])
def test_row_with_a_bad_user_id_raises_backup_error(user_id):
    text = valid_prefix() + f"{user_id},1,2,3,4,5,6,7,8\n"
    _, batches = read_backup(io.BytesIO(gzip_text(text)))

    with pytest.raises(BackupError, match="user_id"):
        list(batches)


def test_row_error_names_its_line_number():
    text = valid_prefix() + "a,1,2,3,4,5,6,7,8\n" + "b,1\n"
    _, batches = read_backup(io.BytesIO(gzip_text(text)))

    with pytest.raises(BackupError, match="row 4"):
        list(batches)


def test_oversized_field_in_a_row_raises_backup_error_when_iterated():
    text = valid_prefix() + '"' + "x" * 200_000 + '",1,2,3,4,5,6,7,8\n'
    _, batches = read_backup(io.BytesIO(gzip_text(text)))

    with pytest.raises(BackupError):
        list(batches)


def test_oversized_field_in_the_column_header_raises_backup_error():
    data = gzip_text(header_line(META) + '"' + "x" * 200_000 + '"\n')

    with pytest.raises(BackupError):
        read_backup(io.BytesIO(data))
