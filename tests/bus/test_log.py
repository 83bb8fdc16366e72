"""Tests for actors.bus.log: real files in tmp_path, crashes simulated by cutting them."""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from actors.bus.log import MAX_RECORD_BYTES, SEGMENT_BYTES, Log, LogCorruption, Record

SMALL_SEGMENT = 4096  # bytes; forces many rolls with small records


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


def frames(directory: Path) -> list[tuple[Path, int, int, int]]:
    """Parse segments independently of the module: (file, start, end, position)."""
    out = []
    for path in segment_files(directory):
        buf, i = path.read_bytes(), 0
        while i < len(buf):
            length, crc = struct.unpack_from("<II", buf, i)
            body = buf[i + 8 : i + 8 + length]
            assert zlib.crc32(body) == crc
            out.append((path, i, i + 8 + length, struct.unpack_from("<Q", body)[0]))
            i += 8 + length
    return out


def fill(log: Log, count: int, rng: random.Random, batch: int = 17) -> list[Record]:
    """Append ``count`` records of varied size with explicit times, committing in batches."""
    records = []
    for n in range(count):
        data = rng.randbytes(rng.randrange(0, 300))
        records.append(log.append(str(n % 3), n * 2, data, time_ms=1000 + n // 4 * 10))
        if len(records) % batch == 0:
            log.commit()
    log.commit()
    return records


def opened(directory: Path, segment_bytes: int = SMALL_SEGMENT) -> Log:
    log = Log(directory, segment_bytes=segment_bytes)
    log.open()
    return log


@pytest.fixture
def three_segments(tmp_path: Path) -> tuple[Path, list[Record]]:
    """A closed log spanning exactly three segments."""
    directory = tmp_path / "log"
    log = opened(directory)
    rng = random.Random(7)
    records: list[Record] = []
    while True:
        records += fill(log, 1, rng)
        files = segment_files(directory)
        if len(files) == 3 and files[2].stat().st_size > SMALL_SEGMENT // 2:
            break
    log.close()
    return directory, records


def test_empty_directory_opens_as_empty_log(tmp_path: Path) -> None:
    log = Log(tmp_path / "new" / "log")
    report = log.open()
    assert report == (0, 1, 0, 0, "")
    assert (log.end, log.committed_end) == (0, 0)
    assert len(log.log_id) == 16 and int(log.log_id, 16) >= 0
    assert log.read(0) == [] and log.position_at_time(123) == 0
    assert log.commit() == 0
    log.close()
    log.close()  # idempotent
    assert log.open() == (0, 1, 0, 0, "")  # the same object can be reopened
    log.close()
    assert json.loads((tmp_path / "new" / "log" / "meta.json").read_text())["log_id"] == log.log_id


def test_round_trip_across_segments_and_reopen(tmp_path: Path) -> None:
    log = opened(tmp_path)
    records = fill(log, 300, random.Random(1))
    assert [r.position for r in records] == list(range(300))
    assert log.read(0, max_records=10_000, max_bytes=1 << 30) == records
    log_id = log.log_id
    log.close()

    files = segment_files(tmp_path)
    assert len(files) > 5
    parsed = frames(tmp_path)
    assert [f[3] for f in parsed] == list(range(300))
    for path in files:  # each file is named after its first record; none exceeds the cap
        assert int(path.stem) == next(f[3] for f in parsed if f[0] == path)
        assert path.stat().st_size <= SMALL_SEGMENT

    log = Log(tmp_path, segment_bytes=SMALL_SEGMENT)
    report = log.open()
    assert report == (300, len(files), 0, 0, "")
    assert log.log_id == log_id and log.end == log.committed_end == 300
    assert log.read(0, max_records=10_000, max_bytes=1 << 30) == records
    assert log.append("x", 1, b"more").position == 300
    log.close()


def test_read_excludes_uncommitted(tmp_path: Path) -> None:
    log = opened(tmp_path)
    for n in range(5):
        log.append("a", n, b"committed")
    assert log.read(0) == [] and log.committed_end == 0 and log.end == 5
    assert log.commit() == 5
    for n in range(3):
        log.append("a", 5 + n, b"pending")
    assert (log.end, log.committed_end) == (8, 5)
    assert [r.data for r in log.read(0)] == [b"committed"] * 5
    assert log.read(5) == [] and log.read(7) == []
    log.close()  # commits the pending three
    log = opened(tmp_path)
    assert [r.seq for r in log.read(0)] == list(range(8))
    log.close()


def test_read_slices(tmp_path: Path) -> None:
    log = opened(tmp_path)
    records = fill(log, 250, random.Random(2))
    assert log.read(120, max_records=5) == records[120:125]
    for path in segment_files(tmp_path):  # starting exactly at every segment boundary
        base = int(path.stem)
        assert log.read(base, max_records=3) == records[base : base + 3]
        if base:
            assert log.read(base - 1, max_records=2) == records[base - 1 : base + 1]
    sizes = [8 + 26 + len(r.origin) + len(r.data) for r in records]
    budget = sum(sizes[40:52])
    assert log.read(40, max_bytes=budget) == records[40:52]
    assert log.read(40, max_bytes=budget - 1) == records[40:51]
    assert log.read(40, max_bytes=1) == records[40:41]  # always at least one
    with pytest.raises(ValueError):
        log.read(-1)
    assert log.read(250) == [] and log.read(10**9) == []
    log.close()


@pytest.mark.parametrize("segment_bytes", [SMALL_SEGMENT, SEGMENT_BYTES])
def test_read_from_every_position(tmp_path: Path, segment_bytes: int) -> None:
    """With big segments the sparse index (every 256 records) does the seeking."""
    log = opened(tmp_path, segment_bytes)
    records = fill(log, 600, random.Random(8))
    for p in range(len(records)):
        assert log.read(p, max_records=3) == records[p : p + 3], p
    assert log.read(0, max_records=600, max_bytes=1 << 30) == records
    log.close()


@pytest.mark.parametrize("segment_bytes", [SMALL_SEGMENT, SEGMENT_BYTES])
def test_sequential_tailing_in_small_chunks(tmp_path: Path, segment_bytes: int) -> None:
    log = opened(tmp_path, segment_bytes)
    records = fill(log, 400, random.Random(3))
    got, pos = [], 0
    while chunk := log.read(pos, max_records=7, max_bytes=900):
        assert chunk[0].position == pos
        got += chunk
        pos += len(chunk)
    assert got == records
    log.close()


def test_record_larger_than_segment_gets_its_own_file(tmp_path: Path) -> None:
    log = opened(tmp_path)
    log.append("a", 0, b"small")
    big = log.append("a", 1, os.urandom(3 * SMALL_SEGMENT))
    log.append("a", 2, b"after")
    log.commit()
    names = [int(p.stem) for p in segment_files(tmp_path)]
    assert names == [0, 1, 2]
    assert log.read(1, max_bytes=10) == [big]
    assert [r.seq for r in log.read(0)] == [0, 1, 2]
    log.close()


@pytest.mark.parametrize("segment_bytes", [SMALL_SEGMENT, SEGMENT_BYTES])
def test_position_at_time(tmp_path: Path, segment_bytes: int) -> None:
    log = opened(tmp_path, segment_bytes)
    records = fill(log, 600, random.Random(4))  # times 1000, 1000, 1000, 1000, 1010, ...
    log.append("late", 0, b"uncommitted", time_ms=10**9)
    times = [r.time_ms for r in records]
    for t in range(times[0] - 3, times[-1] + 5):
        expected = next((r.position for r in records if r.time_ms >= t), len(records))
        assert log.position_at_time(t) == expected, t
    assert log.position_at_time(0) == 0
    assert log.position_at_time(10**9) == 600  # the uncommitted record does not count
    log.close()


def test_time_never_goes_backwards(tmp_path: Path) -> None:
    log = opened(tmp_path)
    assert log.append("a", 0, b"", time_ms=5000).time_ms == 5000
    assert log.append("a", 1, b"", time_ms=4000).time_ms == 5000
    assert log.append("a", 2, b"", time_ms=6000).time_ms == 6000
    assert log.append("a", 3, b"").time_ms > 1_600_000_000_000  # wall clock, ms
    log.close()
    log = opened(tmp_path)
    last = log.read(3)[0].time_ms
    assert log.append("a", 4, b"", time_ms=1).time_ms == last
    log.close()


def test_append_rejects_bad_input(tmp_path: Path) -> None:
    log = opened(tmp_path)
    with pytest.raises(ValueError):
        log.append("o" * 70_000, 0, b"")
    with pytest.raises(ValueError):
        log.append("a", -1, b"")
    with pytest.raises(ValueError):
        log.append("a", 1 << 64, b"")
    with pytest.raises(ValueError):
        log.append("a", 0, bytes(MAX_RECORD_BYTES))
    assert log.end == 0
    assert log.append("é", (1 << 64) - 1, bytearray(b"ok")).data == b"ok"
    log.commit()
    assert log.read(0)[0] == Record(0, log.read(0)[0].time_ms, "é", (1 << 64) - 1, b"ok")
    log.close()
    with pytest.raises(RuntimeError):
        log.append("a", 0, b"closed")


def expected_prefix(parsed: list, path: Path, offset: int) -> int:
    """Records that lie wholly before ``offset`` in ``path`` (and in earlier files)."""
    return sum(1 for f in parsed if f[0] < path or (f[0] == path and f[2] <= offset))


def check_recovered(
    directory: Path, records: list[Record], keep: int, segment_bytes: int = SMALL_SEGMENT
) -> None:
    """The log holds exactly ``records[:keep]`` and keeps growing across a reopen."""
    log = Log(directory, segment_bytes=segment_bytes)
    report = log.open()
    assert report.records == keep and log.end == keep
    assert log.read(0, max_records=10**6, max_bytes=1 << 30) == records[:keep]
    added = log.append("new", 99, b"after crash")
    assert added.position == keep and log.commit() == keep + 1
    log.close()
    log = opened(directory, segment_bytes)
    assert log.end == keep + 1
    assert log.read(0, max_records=10**6, max_bytes=1 << 30) == records[:keep] + [added]
    log.close()


def test_torn_tail_at_random_offsets(three_segments, tmp_path: Path) -> None:
    source, records = three_segments
    parsed = frames(source)
    files = segment_files(source)
    sizes = [p.stat().st_size for p in files]
    rng = random.Random(11)
    offsets = [rng.randrange(sum(sizes)) for _ in range(38)] + [sizes[0], sizes[0] + sizes[1]]
    for n, global_offset in enumerate(offsets):
        copy = tmp_path / f"torn{n}"
        shutil.copytree(source, copy)
        k = 0
        while global_offset >= sizes[k] and k < 2:
            global_offset -= sizes[k]
            k += 1
        target = copy / files[k].name
        os.truncate(target, global_offset)
        if n % 2:  # a crash that also lost the later files
            for later in segment_files(copy)[k + 1 :]:
                later.unlink()
        keep = expected_prefix(parsed, files[k], global_offset)
        check_recovered(copy, records, keep)


def test_bit_flips_keep_intact_prefix(three_segments, tmp_path: Path) -> None:
    source, records = three_segments
    parsed = frames(source)
    rng = random.Random(13)
    # Explicit hits in a record's length, crc, position, origin and data, then random ones.
    path, start, end, _ = parsed[len(parsed) // 2]
    targets = [(path, start + d) for d in (0, 4, 8, 16, 24, 33, 34)] + [(path, end - 1)]
    for _ in range(32):
        path, start, end, _ = rng.choice(parsed)
        targets.append((path, rng.randrange(start, end)))
    for n, (path, offset) in enumerate(targets):
        copy = tmp_path / f"flip{n}"
        shutil.copytree(source, copy)
        raw = bytearray((copy / path.name).read_bytes())
        raw[offset] ^= rng.randrange(1, 256)
        (copy / path.name).write_bytes(raw)
        damaged = next(f for f in parsed if f[0] == path and f[1] <= offset < f[2])
        check_recovered(copy, records, damaged[3])
        log = Log(copy, segment_bytes=SMALL_SEGMENT)
        assert log.open().reason == ""  # the cut is durable: the next open is clean
        log.close()


def test_recovery_report_for_torn_tail(three_segments) -> None:
    directory, records = three_segments
    files = segment_files(directory)
    cut = files[1].stat().st_size - 3
    os.truncate(files[1], cut)
    third = files[2].stat().st_size
    log = Log(directory, segment_bytes=SMALL_SEGMENT)
    report = log.open()
    assert report.segments == 2 and report.removed_segments == 1
    assert report.truncated_bytes == third + (cut - frames(directory)[-1][2])
    assert files[1].name in report.reason
    assert report.records == log.end == int(files[2].stem) - 1
    assert log.read(0, max_records=10**6) == records[: log.end]
    assert not files[2].exists()
    log.close()


def test_misnamed_segment_is_cut(three_segments, tmp_path: Path) -> None:
    source, records = three_segments
    files = segment_files(source)
    for k in range(3):
        copy = tmp_path / f"renamed{k}"
        shutil.copytree(source, copy)
        wrong = int(files[k].stem) + 1
        (copy / files[k].name).rename(copy / f"{wrong:020d}.log")
        log = Log(copy, segment_bytes=SMALL_SEGMENT)
        report = log.open()
        keep = int(files[k].stem)
        assert report.records == keep and report.removed_segments == 3 - k
        assert report.reason
        assert log.read(0, max_records=10**6, max_bytes=1 << 30) == records[:keep]
        log.close()
        check_recovered(copy, records, keep)


def test_empty_trailing_segment_is_clean(tmp_path: Path) -> None:
    log = opened(tmp_path)
    records = fill(log, 30, random.Random(5))
    log.close()
    (tmp_path / f"{30:020d}.log").touch()  # crashed right after creating a segment
    log = Log(tmp_path, segment_bytes=SMALL_SEGMENT)
    assert log.open() == (30, len(segment_files(tmp_path)), 0, 0, "")
    log.append("a", 0, b"x")
    log.close()
    assert (tmp_path / f"{30:020d}.log").stat().st_size > 0
    log = opened(tmp_path)
    assert log.read(0)[:30] == records and log.read(30)[0].origin == "a"
    log.close()


def test_identity_is_never_silently_replaced(tmp_path: Path) -> None:
    log = opened(tmp_path)
    fill(log, 3, random.Random(6))
    log.close()
    meta = tmp_path / "meta.json"
    meta.write_text("{not json")
    with pytest.raises(LogCorruption):
        Log(tmp_path).open()
    meta.unlink()
    with pytest.raises(LogCorruption):
        Log(tmp_path).open()


def test_torn_tail_in_one_big_segment(tmp_path: Path) -> None:
    """Recovery rebuilds the sparse index that reads and time lookups rely on."""
    source = tmp_path / "src"
    log = opened(source, SEGMENT_BYTES)
    records = fill(log, 700, random.Random(9))
    log.close()
    parsed = frames(source)
    path = parsed[0][0]
    rng = random.Random(10)
    for n in range(8):
        copy = tmp_path / f"cut{n}"
        shutil.copytree(source, copy)
        offset = rng.randrange(parsed[300][1], path.stat().st_size)
        os.truncate(copy / path.name, offset)
        keep = expected_prefix(parsed, path, offset)
        log = opened(copy, SEGMENT_BYTES)
        for p in rng.sample(range(keep), 20) + [keep - 1]:
            assert log.read(p, max_records=2) == records[p : min(p + 2, keep)]
        t = records[keep - 1].time_ms
        assert log.position_at_time(t) == next(r.position for r in records if r.time_ms == t)
        assert log.position_at_time(t + 1) == keep
        log.close()
        check_recovered(copy, records, keep, SEGMENT_BYTES)
