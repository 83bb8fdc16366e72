"""The fuzzed replica's workers survive a burst of bad input and still serve.

Self-contained: the test does its own fuzzing before it checks, so it holds in any
order; the package's ``replica`` fixture checks the same at teardown, after every test.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from hypothesis import given
from hypothesis import strategies as st

from tests.grades.fuzz.oracle import (
    AUTH_HEADER,
    GET_STATUSES,
    SET_STATUSES,
    TIMEOUT_S,
    assert_sane,
    assert_survived,
    encode_pairs,
    fuzz_settings,
    object_pairs,
    post_set,
    user_ids,
)

PROMISED_BYTES = 64  # the Content-Length a vanishing client announces and never sends


def vanish_mid_body(port: int, sent: int) -> None:
    """A POST /set that promises PROMISED_BYTES, sends `sent` of them, and closes."""
    head = (
        "POST /set HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: {AUTH_HEADER}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {PROMISED_BYTES}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(head.encode() + b"{" * sent)


def test_the_workers_survive_fuzzing_and_still_serve(replica, session):
    """Odd /set bodies, odd /get keys and clients that vanish mid-body: no worker dies or
    is replaced, and the replica still sets, gets, backs up and is ready."""

    @fuzz_settings(60)
    @given(object_pairs(), user_ids, st.integers(0, PROMISED_BYTES - 1))
    def burst(pairs, user_id, sent):
        assert_sane(post_set(replica, session, encode_pairs(pairs)), SET_STATUSES)
        response = session.get(
            f"{replica.get_base}/get", params={"user_id": user_id}, timeout=TIMEOUT_S
        )
        assert_sane(response, GET_STATUSES)
        vanish_mid_body(urlsplit(replica.set_url).port, sent)

    burst()
    assert_survived(replica)
