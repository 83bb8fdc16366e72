"""Tests for actors.grades.hlc: stamps follow wall time and never go backwards."""

from __future__ import annotations

import time

from actors.grades.hlc import COUNTER_BITS, HybridClock, stamp_ms


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def test_now_is_strictly_increasing_over_many_calls():
    clock = HybridClock()

    stamps = [clock.now() for _ in range(20_000)]  # far more than 4096 per ms

    assert all(a < b for a, b in zip(stamps, stamps[1:]))


def test_now_follows_the_wall_clock():
    before = wall_ms()
    stamp = HybridClock().now()
    after = wall_ms()

    assert before <= stamp_ms(stamp) <= after


def test_stamp_ms_drops_the_counter_bits():
    assert stamp_ms((1234 << COUNTER_BITS) | ((1 << COUNTER_BITS) - 1)) == 1234


def test_last_is_the_latest_issued_stamp():
    clock = HybridClock()

    stamp = clock.now()

    assert clock.last == stamp


def test_observing_a_larger_stamp_makes_the_next_stamp_larger():
    clock = HybridClock()
    future = (wall_ms() + 60_000) << COUNTER_BITS

    clock.observe(future)

    assert clock.now() > future


def test_observing_a_smaller_stamp_does_not_move_the_clock_back():
    clock = HybridClock()
    latest = clock.now()

    clock.observe(latest - 1_000_000)

    assert clock.last == latest
    assert clock.now() > latest


def test_skew_shifts_the_milliseconds_part():
    before = wall_ms()
    ahead = HybridClock(skew_ms=10_000).now()
    behind = HybridClock(skew_ms=-10_000).now()
    after = wall_ms()

    assert before + 10_000 <= stamp_ms(ahead) <= after + 10_000
    assert before - 10_000 <= stamp_ms(behind) <= after - 10_000


def test_clock_behind_keeps_increasing_after_observing_a_clock_ahead():
    ahead, behind = HybridClock(skew_ms=5_000), HybridClock(skew_ms=-5_000)
    seen = ahead.now()

    behind.observe(seen)
    stamps = [behind.now() for _ in range(5_000)]

    assert stamps[0] > seen
    assert all(a < b for a, b in zip(stamps, stamps[1:]))
    # the behind clock cannot jump to its own wall time: it stays near the observed one
    assert stamp_ms(stamps[-1]) >= stamp_ms(seen)


def test_exchanging_stamps_both_ways_orders_causal_writes():
    ahead, behind = HybridClock(skew_ms=5_000), HybridClock(skew_ms=-5_000)

    first = ahead.now()
    behind.observe(first)
    second = behind.now()
    ahead.observe(second)
    third = ahead.now()

    assert first < second < third
