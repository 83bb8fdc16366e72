"""The checks a JetStream consumer start needs (the server would start elsewhere silently)."""

from __future__ import annotations

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
