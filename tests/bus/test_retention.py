"""Log retention: deleting old segments (actors.bus.log.drop_before) and the policy
that decides it (actors.bus.retention), on real files in tmp_path."""

from __future__ import annotations

import json

import pytest

from actors.bus.log import Log, LogGone
from actors.bus.retention import Retention

SMALL_SEGMENT = 4096  # bytes: a few dozen records a segment
PAYLOAD = b"x" * 100


def filled(directory, count: int) -> Log:
    log = Log(directory, SMALL_SEGMENT)
    log.open()
    for i in range(count):
        log.append("t", i, PAYLOAD, time_ms=1_000 + i)
        if i % 10 == 9:
            log.commit()
    log.commit()
    return log


def test_drop_before_deletes_closed_segments_and_refuses_reads_below(tmp_path):
    log = filled(tmp_path, 500)
    segments = len(list(tmp_path.glob("*.log")))
    assert segments > 5
    freed = log.drop_before(250)
    assert freed > 0
    first = log.first_position
    assert 0 < first <= 250
    assert len(list(tmp_path.glob("*.log"))) < segments
    assert [r.position for r in log.read(first, 10)] == list(range(first, first + 10))
    with pytest.raises(LogGone):
        log.read(first - 1, 10)
    log.close()


def test_a_trimmed_log_reopens_at_its_first_position_and_appends_on(tmp_path):
    log = filled(tmp_path, 300)
    log.drop_before(200)
    first, log_id = log.first_position, log.log_id
    log.close()
    again = Log(tmp_path, SMALL_SEGMENT)
    report = again.open()
    assert not report.reason
    assert (again.first_position, again.committed_end, again.log_id) == (first, 300, log_id)
    again.append("t", 300, PAYLOAD)
    again.commit()
    assert again.read(300, 1)[0].position == 300
    again.close()


def test_segments_left_by_a_crash_during_drop_are_deleted_on_open(tmp_path):
    log = filled(tmp_path, 300)
    bases = sorted(int(p.stem) for p in tmp_path.glob("*.log"))
    log.close()
    meta = json.loads((tmp_path / "meta.json").read_text())
    meta["first"] = bases[3]  # meta written, the files not yet deleted
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    again = Log(tmp_path, SMALL_SEGMENT)
    assert not again.open().reason
    assert again.first_position == bases[3]
    assert sorted(int(p.stem) for p in tmp_path.glob("*.log")) == bases[3:]
    again.close()


def test_retention_trims_only_below_every_consumers_snapshot(tmp_path):
    log = filled(tmp_path, 600)
    retention = Retention(tmp_path, retain_bytes=SMALL_SEGMENT * 2, retain_age_s=0)
    assert retention.trim(log, now_ms=10**13) == 0  # nobody has snapshotted anything
    retention.record("replica1", 500, log.log_id)
    retention.record("replica2", 100, log.log_id)
    retention.trim(log, now_ms=10**13)
    assert 0 < log.first_position <= 100  # replica 2 still needs 100 on
    retention.record("replica2", 550, log.log_id)
    reloaded = Retention(tmp_path, retain_bytes=SMALL_SEGMENT * 2, retain_age_s=0)
    assert reloaded.floor() == 500  # the positions survive a restart of the bus
    reloaded.trim(log, now_ms=10**13)
    record_bytes = 8 + 26 + 1 + len(PAYLOAD)
    assert 500 - SMALL_SEGMENT // record_bytes <= log.first_position <= 500  # all it could
    log.close()


def test_retention_by_age_keeps_recent_segments(tmp_path):
    log = filled(tmp_path, 600)  # record i stamped 1000 + i ms
    retention = Retention(tmp_path, retain_bytes=0, retain_age_s=1)
    retention.record("replica1", 600, log.log_id)
    retention.trim(log, now_ms=1_000 + 300 + 1_000)  # records older than 300 ms may go
    assert 0 < log.first_position <= 300
    log.close()


def test_a_silent_consumer_stops_holding_the_floor_and_a_retired_one_is_forgotten(tmp_path):
    log = filled(tmp_path, 600)
    retention = Retention(tmp_path, SMALL_SEGMENT * 2, 0, silent_s=10, started_ms=1_000)
    retention.record("replica2", 100, log.log_id, now_ms=1_000)
    retention.record("replica1", 500, log.log_id, now_ms=5_000)
    assert retention.floor(now_ms=11_000) == 100  # 10 s: not yet silent
    assert retention.consumers.newly_silent(11_000) == []
    assert retention.floor(now_ms=11_001) == 500  # replica2 silent for over 10 s
    assert retention.consumers.newly_silent(11_001) == ["replica2"]
    assert retention.consumers.newly_silent(12_000) == []  # one warning per silence
    assert retention.floor(now_ms=16_000) == 0  # nobody live: nothing may go
    retention.record("replica2", 120, log.log_id, now_ms=12_000)  # back: holds it again
    assert retention.floor(now_ms=12_000) == 120
    assert retention.trim(log, now_ms=12_000) > 0
    assert 0 < log.first_position <= 120
    assert retention.retire("replica2") and not retention.retire("replica2")
    reloaded = Retention(tmp_path, SMALL_SEGMENT * 2, 0, silent_s=10, started_ms=50_000)
    assert reloaded.positions == {"replica1": 500}  # the retirement is durable
    assert reloaded.floor(now_ms=59_000) == 500  # silence counts from the bus's start
    log.close()
