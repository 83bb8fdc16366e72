"""Load over ZeroMQ: Set messages to a storage actor, BusPublish to the bus.

These talk to the actors directly, without HTTP: they measure what one actor
process can do, and they prefill replicas quickly.
"""

from __future__ import annotations

import itertools
import os
import random
import time

import zmq

from actors.bus import messages as bus_messages
from actors.grades import messages
from actors.runtime import protocol
from actors.runtime.client import Client, RemoteError
from bench.grades.stack import BenchError

DEADLINE_S = 60.0  # Set.deadline_ms: far enough that the actor never drops a bench write


def _set(key: str, rng: random.Random) -> messages.Set:
    values = [rng.randrange(100_000) for _ in range(4)]
    return messages.Set(key, values, int((time.time() + DEADLINE_S) * 1000))


def sequential_sets(endpoint: str, duration_s: float, ids: int = 100_000) -> dict:
    """One Set in flight: call, wait for the reply, repeat."""
    rng = random.Random(1)
    count = errors = 0
    with Client(endpoint, timeout_s=5.0) as client:
        if not client.wait_connected(5.0):
            raise BenchError(f"cannot connect to {endpoint}")
        started = time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline:
            for _ in range(100):
                try:
                    client.call(_set(str(rng.randint(1, ids)), rng))
                    count += 1
                except RemoteError:
                    errors += 1
        elapsed = time.perf_counter() - started
    return {"messages": count, "errors": errors, "seconds": elapsed, "per_s": count / elapsed}


def pipelined_sets(
    endpoint: str,
    keys,
    window: int = 1000,
    duration_s: float | None = None,
    timeout_s: float = 30.0,
) -> dict:
    """Send `window` Sets, then receive their `window` replies; repeat.

    Args:
        keys: an iterable of user ids (its end ends the run), e.g. range-based for a prefill
            or an endless random stream with duration_s for a throughput figure.
        duration_s: stop after this long (checked between windows).
    """
    rng = random.Random(2)
    count = errors = 0
    keys = iter(keys)
    first_error = ""
    with Client(endpoint, timeout_s=timeout_s) as client:
        if not client.wait_connected(5.0):
            raise BenchError(f"cannot connect to {endpoint}")
        started = time.perf_counter()
        while duration_s is None or time.perf_counter() - started < duration_s:
            sent = 0
            for key in itertools.islice(keys, window):
                client.send(_set(key, rng))
                sent += 1
            if not sent:
                break
            for _ in range(sent):
                try:
                    _, reply = client.receive(timeout_s)
                except RemoteError as exc:
                    raise BenchError(
                        f"{endpoint}: no reply within {timeout_s:.0f} s ({count} done)"
                    ) from exc
                if isinstance(reply, protocol.Ok):
                    count += 1
                else:
                    errors += 1
                    first_error = first_error or f"{reply}"
        elapsed = time.perf_counter() - started
    return {
        "messages": count,
        "errors": errors,
        "first_error": first_error,
        "seconds": elapsed,
        "per_s": count / elapsed,
        "window": window,
    }


def random_keys(ids: int = 100_000, seed: int = 3):
    rng = random.Random(seed)
    while True:
        yield str(rng.randint(1, ids))


def bus_publishes(
    bus_url: str,
    duration_s: float,
    in_flight: int = 256,
    payload_bytes: int = 200,
    stream: str = "bench",
) -> dict:
    """BusPublish from one DEALER with `in_flight` outstanding; counts durable acks."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
    sock.connect(bus_url)
    payload = os.urandom(payload_bytes)
    seqs = itertools.count(1)
    acked = errors = outstanding = 0
    first_error = ""
    try:
        # wait for the connection and the stream (its first publish creates it)
        sock.send(protocol.encode(bus_messages.BusInfo(stream), 0))
        if not sock.poll(10_000):
            raise BenchError(f"the bus at {bus_url} does not answer")
        sock.recv()
        started = time.perf_counter()
        deadline = started + duration_s
        while True:
            sending = time.perf_counter() < deadline
            while sending and outstanding < in_flight:
                seq = next(seqs)
                sock.send(
                    protocol.encode(bus_messages.BusPublish(stream, "bench", seq, payload), seq)
                )
                outstanding += 1
            if not outstanding:
                break
            if not sock.poll(10_000):
                raise BenchError(f"the bus stopped answering ({outstanding} outstanding)")
            while outstanding:
                try:
                    body = sock.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
                # NOTE: the bus acks a group commit's publishes of one caller as one Batch
                for _, reply in protocol.unbatch(*protocol.decode(body)):
                    outstanding -= 1
                    if isinstance(reply, protocol.Ok):
                        acked += 1
                    else:
                        errors += 1
                        first_error = first_error or str(reply)
        elapsed = time.perf_counter() - started
    finally:
        sock.close(linger=0)
        ctx.term()
    return {
        "appends": acked,
        "errors": errors,
        "first_error": first_error,
        "seconds": elapsed,
        "per_s": acked / elapsed,
        "in_flight": in_flight,
        "payload_bytes": payload_bytes,
    }
