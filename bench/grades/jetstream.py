"""NATS JetStream publishes from nats-py, under the load zmqload.bus_publishes makes.

A stream with file storage on a bare ``nats-server -js``; 200-byte messages,
256 PubAcks outstanding, measured two ways, both from nats-py:

- ``api``: 256 asyncio tasks each looping ``await js.publish(...)`` (the
  client's JetStream API; faster here than ``js.publish_async``, whose
  per-message wait_for task costs more than the server's work).
- ``raw``: core ``nc.publish(subject, payload, reply=inbox)`` with at most 256
  unanswered; each reply is the stream's PubAck (checked). Like our bus client
  (a bare DEALER), this leaves out client-library overhead, so it shows the
  server's rate rather than the client's.

JetStream acknowledges once the message is written to the page cache (it
fsyncs on its sync_interval, 2 min by default); our bus acknowledges after the
group's fdatasync.
"""

from __future__ import annotations

import asyncio
import os
import time

from bench.grades.stack import BenchError

JETSTREAM_NOTE = (
    "JetStream acks before fsync (page cache; it fsyncs every 2 min by "
    "default), our bus acks only after the group fdatasync"
)


async def _connect(url: str, stream: str, subject: str):
    import nats
    from nats.js.api import StorageType

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[subject], storage=StorageType.FILE)
    return nc, js


def _result(
    acked: int, errors: int, first_error: str, elapsed: float, in_flight: int, payload_bytes: int
) -> dict:
    return {
        "appends": acked,
        "errors": errors,
        "first_error": first_error,
        "seconds": elapsed,
        "per_s": acked / elapsed,
        "in_flight": in_flight,
        "payload_bytes": payload_bytes,
    }


async def _api(url: str, duration_s: float, in_flight: int, payload_bytes: int) -> dict:
    nc, js = await _connect(url, "BENCHAPI", "bench.api")
    payload = os.urandom(payload_bytes)
    counts = {"acked": 0, "errors": 0, "first": ""}
    try:
        await js.publish("bench.api", payload)
        started = time.perf_counter()
        deadline = started + duration_s

        async def worker():
            while time.perf_counter() < deadline:
                try:
                    await js.publish("bench.api", payload, timeout=10)
                    counts["acked"] += 1
                except Exception as exc:  # noqa: BLE001 - any nats error: count it, go on
                    counts["errors"] += 1
                    counts["first"] = counts["first"] or repr(exc)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    finally:
        await nc.close()
    return _result(
        counts["acked"], counts["errors"], counts["first"], elapsed, in_flight, payload_bytes
    )


async def _raw(url: str, duration_s: float, in_flight: int, payload_bytes: int) -> dict:
    nc, _js = await _connect(url, "BENCHRAW", "bench.raw")
    payload = os.urandom(payload_bytes)
    counts = {"acked": 0, "errors": 0, "first": "", "sent": 0}
    room = asyncio.Event()  # set when a reply frees a slot of the window

    async def on_reply(msg) -> None:
        if b'"error"' in msg.data or b'"seq"' not in msg.data:
            counts["errors"] += 1
            counts["first"] = counts["first"] or msg.data.decode(errors="replace")[:200]
        else:
            counts["acked"] += 1
        room.set()

    def outstanding() -> int:
        return counts["sent"] - counts["acked"] - counts["errors"]

    inbox = nc.new_inbox()
    try:
        await nc.subscribe(f"{inbox}.*", cb=on_reply)
        started = time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline:
            while outstanding() < in_flight:  # refill every free slot, then wait for room
                counts["sent"] += 1
                await nc.publish("bench.raw", payload, reply=f"{inbox}.{counts['sent']}")
            room.clear()
            await asyncio.wait_for(room.wait(), timeout=10)
        drain_deadline = time.perf_counter() + 30
        while outstanding() and time.perf_counter() < drain_deadline:
            room.clear()
            await asyncio.wait_for(room.wait(), timeout=10)
        elapsed = time.perf_counter() - started
    finally:
        await nc.close()
    return _result(
        counts["acked"], counts["errors"], counts["first"], elapsed, in_flight, payload_bytes
    )


def publishes(
    url: str, duration_s: float, way: str = "api", in_flight: int = 256, payload_bytes: int = 200
) -> dict:
    """Durable (file storage) JetStream publishes per second; way is "api" or "raw"."""
    run = {"api": _api, "raw": _raw}[way]
    try:
        return asyncio.run(
            asyncio.wait_for(
                run(url, duration_s, in_flight, payload_bytes), timeout=duration_s + 60
            )
        )
    except TimeoutError:
        raise BenchError(f"JetStream publishes ({way}) overran their deadline") from None
