"""The checks a JetStream consumer start needs (the server would start elsewhere silently)."""

from __future__ import annotations

from nats.js import api

from actors.grades.jetstream.retention import cut_sequence
from actors.grades.jetstream.stream import log_id_of, position_of, start_problem


def test_positions_are_stream_sequences_minus_one():
    assert position_of(1) == 0
    assert position_of(101) == 100


def test_a_start_inside_the_stream_or_at_its_end_is_fine():
    assert start_problem(1, 1, 0) == ""  # empty stream, from the start
    assert start_problem(5, 1, 10) == ""
    assert start_problem(11, 1, 10) == ""  # caught up: the next record is new
    assert start_problem(21, 21, 20) == ""  # purged, but we had applied everything


def test_a_start_below_the_first_stored_sequence_is_gone():
    assert start_problem(5, 21, 30) == "gone"
    assert start_problem(1, 21, 30) == "gone"  # a cold start cannot replay what was purged


def test_a_start_past_the_end_is_not_this_log():
    assert start_problem(50, 1, 10) == "past_end"


def test_a_recreated_stream_has_another_log_id():
    import datetime

    one = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert log_id_of("GRADES", one) != log_id_of("GRADES", one + datetime.timedelta(seconds=1))


def cut(size: int, floor: int, retain_bytes: int, age_cut_seq: int | None) -> int:
    """cut_sequence on a stream of sequences 1..1000 holding ``size`` bytes."""
    state = api.StreamState(messages=1000, bytes=size, first_seq=1, last_seq=1000, consumer_count=0)
    return cut_sequence(state, floor, retain_bytes, age_cut_seq)


def test_the_purge_point_never_passes_the_lowest_live_position():
    # 1,000 messages of 100 bytes over a 50,000-byte limit: keep the newest 500...
    assert cut(100_000, floor=900, retain_bytes=50_000, age_cut_seq=None) == 501
    # ...unless a live replica's snapshot reaches only position 300 (sequence 301 kept).
    assert cut(100_000, floor=300, retain_bytes=50_000, age_cut_seq=None) == 301
    assert cut(100_000, floor=0, retain_bytes=50_000, age_cut_seq=900) == 0  # nobody live
    assert cut(10_000, floor=950, retain_bytes=50_000, age_cut_seq=None) == 0  # under the limit
    assert cut(10_000, floor=950, retain_bytes=0, age_cut_seq=700) == 700  # too old below 700
    assert cut(10_000, floor=5000, retain_bytes=0, age_cut_seq=1001) == 1001  # all too old
