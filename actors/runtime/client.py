"""Clients that send requests to an actor's ROUTER and wait for the reply.

``AsyncClient`` is what an HTTP worker uses: one DEALER per worker process,
created lazily inside the worker's event loop (never in gunicorn's master, so
no ZMQ context crosses a fork), many requests in flight, each matched to its
reply by request id and bounded by a timeout. ``Client`` is the blocking twin
for tools, tests and benchmarks.

Both set ZMQ_IMMEDIATE: while the actor is not connected a request fails at
once with UNAVAILABLE instead of queueing and being applied long after its
caller gave up.

``AsyncClient`` also watches its connection (a ZMQ socket monitor): when the
actor's process dies, the requests it had taken get their answer at once
instead of at their timeout. A request the caller marked ``resend`` (a read:
asking twice changes nothing) is sent again to the actor once it is back; any
other is answered UNKNOWN_OUTCOME, since the actor may have acted on it (e.g.
published a write that the log applies later) before it died.

NOTE: ZMQ reports a lost connection (EVENT_DISCONNECTED) before its I/O thread
drops the connection's pipe, and until the socket has processed that drop a
send still succeeds into the pipe and the message is discarded with it: a
request sent in between (a resend among them) was lost without a word and
waited for its timeout (a 504). So after a disconnection ``AsyncClient`` sends
nothing until the monitor reports the next connection's handshake, which ZMQ
reports only after it queued both the old pipe's drop and the new pipe for the
socket; it then has the socket process them (ZMQ_EVENTS) before sending.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from typing import Any, NamedTuple

import zmq
from zmq.utils.monitor import recv_monitor_message

from actors.runtime import protocol
from actors.runtime.protocol import ErrorCode
from actors.runtime.security import Curve

__all__ = ["RemoteError", "AsyncClient", "Client", "dealer"]

log = logging.getLogger("client")

DEFAULT_TIMEOUT_S = 5.0
CONNECT_WAIT_S = 1.0
"""A fresh socket connects asynchronously: wait this long for it before saying UNAVAILABLE."""
RECONNECT_IVL_MS = 20
"""How often a DEALER tries to reconnect to an actor that went away (ZMQ's default is
100 ms): a restarted actor is found within this. A failed ipc/tcp connect to a local
address costs a syscall or two."""


class RemoteError(Exception):
    """An Error reply, or a failure to get one (code UNAVAILABLE / UNKNOWN_OUTCOME)."""

    def __init__(self, code: str, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason
        self.retry_after_s = retry_after_s


def _result(message: NamedTuple) -> Any:
    if isinstance(message, protocol.Ok):
        return message.result
    if isinstance(message, protocol.Error):
        raise RemoteError(message.code, message.reason, message.retry_after_s)
    raise RemoteError(ErrorCode.PROTOCOL, f"unexpected reply {protocol.tag_of(message)}")


def dealer(
    ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, curve: Curve | None
) -> zmq.Socket[bytes]:
    """A DEALER connected to an actor's ROUTER, set as every client of one is."""
    sock = ctx.socket(zmq.DEALER)
    if curve is not None:
        curve.connect_as_client(sock)
    sock.linger = 0
    sock.immediate = True
    sock.reconnect_ivl = RECONNECT_IVL_MS
    sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
    sock.connect(endpoint)
    return sock


def _int_option(sock: zmq.Socket[bytes], option: int) -> int:
    """An integer socket option, such as ZMQ_FD (an int on POSIX) or ZMQ_EVENTS."""
    value = sock.getsockopt(option)
    assert isinstance(value, int)
    return value


class AsyncClient:
    """asyncio client; create it anywhere, it connects on first use in a loop.

    Requests made in one event-loop turn leave as one frame (a Batch), and the
    socket is a plain ZMQ socket watched with ``loop.add_reader``: per request
    this costs a dict entry and a timer, not a ZMQ send and a task.
    """

    def __init__(
        self,
        endpoint: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        curve: Curve | None = None,
        peer: str = "actor",
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.peer = peer
        """Names the actor in errors, e.g. "storage actor is not running"."""
        self.timeout_s = timeout_s
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._pending: dict[int, asyncio.Future[NamedTuple]] = {}
        self._outbox: list[tuple[NamedTuple, int]] = []
        self._sent: dict[int, NamedTuple] = {}
        """Requests on the wire, awaiting their reply."""
        self._resend: set[int] = set()
        """Requests to send again if the actor goes away before answering."""
        self._flush_handle: asyncio.Handle | None = None
        self._blocked_since = 0.0
        self._reconnecting = False
        """The connection was lost and no new one has finished its handshake: a send
        could still go into the lost connection's pipe (see the module's NOTE)."""
        self._ids = itertools.count(1)

    def _connect(self) -> tuple[zmq.Socket[bytes], asyncio.AbstractEventLoop]:
        if self._sock is None:
            self._loop = asyncio.get_running_loop()
            self._ctx = zmq.Context()
            self._sock = dealer(self._ctx, self.endpoint, self.curve)
            self._loop.add_reader(_int_option(self._sock, zmq.FD), self._read_replies)
            self._monitor = self._sock.get_monitor_socket(
                zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
            )
            self._loop.add_reader(_int_option(self._monitor, zmq.FD), self._read_events)
            # NOTE: ZMQ's FD is edge-triggered and only re-armed by reading ZMQ_EVENTS.
            self._loop.call_soon(self._read_events)
        assert self._loop is not None
        return self._sock, self._loop

    def _read_replies(self) -> None:
        sock, pending = self._sock, self._pending
        if sock is None:  # closed while this call was scheduled
            return
        while _int_option(sock, zmq.EVENTS) & zmq.POLLIN:
            body = sock.recv(zmq.NOBLOCK)
            try:
                pairs = protocol.unbatch(*protocol.decode(body))
            except protocol.ProtocolError as exc:
                log.warning("dropped a malformed reply from %s: %s", self.endpoint, exc)
                continue
            for request_id, message in pairs:
                future = pending.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(message)

    def _read_events(self) -> None:
        monitor = self._monitor
        if monitor is None:  # closed while this call was scheduled
            return
        lost = connected = False
        while _int_option(monitor, zmq.EVENTS) & zmq.POLLIN:
            event = recv_monitor_message(monitor, zmq.NOBLOCK)
            assert isinstance(event, dict)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                lost, self._reconnecting = True, True
            elif event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                connected, self._reconnecting = True, False
        if lost:
            self._connection_lost()
        if connected:
            # NOTE: reading ZMQ_EVENTS makes the socket process what ZMQ queued for it
            # before this event: the lost connection's pipe goes, the new one comes.
            self._read_replies()

    def _connection_lost(self) -> None:
        """The actor went away: answer what it had taken now, not at the timeout."""
        self._read_replies()  # what it answered before it went
        sent, self._sent = self._sent, {}
        if not sent:
            return
        log.info("%s went away with %d requests unanswered", self.peer, len(sent))
        lost = RemoteError(
            ErrorCode.UNKNOWN_OUTCOME,
            f"{self.peer} went away before answering; the request may have been applied",
        )
        for request_id, message in sent.items():
            future = self._pending.get(request_id)
            if future is None or future.done():
                continue
            if request_id in self._resend:
                self._outbox.append((message, request_id))
            else:
                del self._pending[request_id]
                future.set_exception(lost)
        if self._outbox and self._flush_handle is None and self._loop is not None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        if not self._outbox:
            return
        out, sock, loop = self._outbox, self._sock, self._loop
        if sock is None or loop is None:  # closed while this call was scheduled
            return
        body = protocol.encode(*out[0]) if len(out) == 1 else protocol.encode_batch(out)
        try:
            if self._reconnecting:  # a send now could be lost with the old connection
                raise zmq.Again
            sock.send(body, zmq.NOBLOCK)
        except zmq.Again:
            # Not connected (yet): a fresh socket connects asynchronously.
            now = loop.time()
            self._blocked_since = self._blocked_since or now
            if now - self._blocked_since < CONNECT_WAIT_S:
                self._flush_handle = loop.call_later(0.01, self._flush)
                return
            self._fail_outbox(RemoteError(ErrorCode.UNAVAILABLE, f"{self.peer} is not running", 1))
            return
        self._blocked_since = 0.0
        self._outbox = []
        self._sent.update((request_id, message) for message, request_id in out if request_id)
        # NOTE: a send can swallow the edge the FD signals replies with; look now.
        loop.call_soon(self._read_replies)

    def _fail_outbox(self, error: RemoteError) -> None:
        out, self._outbox = self._outbox, []
        self._blocked_since = 0.0
        for _, request_id in out:
            future = self._pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_exception(error)

    def _expire(self, request_id: int) -> None:
        future = self._pending.pop(request_id, None)
        if future is not None and not future.done():
            future.set_exception(
                RemoteError(ErrorCode.UNKNOWN_OUTCOME, f"{self.peer} did not answer in time")
            )

    def tell(self, message: NamedTuple) -> None:
        """Send a one-way message (request_id 0): no reply and no wait.

        For nudges whose loss a periodic poll covers: if the actor stays
        unreachable for CONNECT_WAIT_S the message is dropped. Call it from
        inside the running event loop.
        """
        _, loop = self._connect()
        self._outbox.append((message, 0))
        if self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush)

    async def call(
        self, message: NamedTuple, timeout_s: float | None = None, resend: bool = False
    ) -> Any:
        """Send a request and wait for its result.

        ``resend``: the request may be sent again if the actor goes away before
        answering (a read); otherwise its caller hears UNKNOWN_OUTCOME at once then.

        Raises:
            RemoteError: an Error reply; UNAVAILABLE if the actor is not connected,
                UNKNOWN_OUTCOME if no reply came within the timeout, or the actor
                went away before answering a request not marked ``resend``.
        """
        _, loop = self._connect()
        request_id = next(self._ids)
        future: asyncio.Future[NamedTuple] = loop.create_future()
        self._pending[request_id] = future
        if resend:
            self._resend.add(request_id)
        self._outbox.append((message, request_id))
        if self._flush_handle is None:
            self._flush_handle = loop.call_soon(self._flush)
        timer = loop.call_later(timeout_s or self.timeout_s, self._expire, request_id)
        try:
            reply = await future
        finally:
            timer.cancel()
            self._pending.pop(request_id, None)
            self._sent.pop(request_id, None)
            self._resend.discard(request_id)
        return _result(reply)

    def close(self) -> None:
        if self._sock is not None:
            assert self._loop is not None and self._ctx is not None
            self._loop.remove_reader(_int_option(self._sock, zmq.FD))
            if self._monitor is not None:
                self._loop.remove_reader(_int_option(self._monitor, zmq.FD))
                self._sock.disable_monitor()
                self._monitor.close(linger=0)
            self._sock.close(linger=0)
            self._ctx.term()
        self._sock = self._ctx = self._monitor = None
        self._reconnecting = False


class Client:
    """Blocking client; on a timeout it closes and reopens its socket (lazy pirate)."""

    def __init__(
        self,
        endpoint: str,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        ctx: zmq.Context[zmq.Socket[bytes]] | None = None,
        curve: Curve | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.timeout_s = timeout_s
        self._own_ctx = ctx is None
        self._ctx = ctx or zmq.Context()
        self._sock = dealer(self._ctx, endpoint, curve)
        self._ids = itertools.count(1)
        self._inbox: collections.deque[tuple[int, NamedTuple]] = collections.deque()

    def send(self, message: NamedTuple) -> int:
        """Send without waiting (for pipelining); returns the request id."""
        request_id = next(self._ids)
        body = protocol.encode(message, request_id)
        try:
            self._sock.send(body, zmq.NOBLOCK)
        except zmq.Again:
            if not self._sock.poll(int(CONNECT_WAIT_S * 1000), zmq.POLLOUT):
                raise RemoteError(
                    ErrorCode.UNAVAILABLE, f"{self.endpoint} is not connected", 1
                ) from None
            self._sock.send(body, zmq.NOBLOCK)
        return request_id

    def receive(self, timeout_s: float | None = None) -> tuple[int, NamedTuple]:
        """Next reply as (request_id, message); RemoteError(UNKNOWN_OUTCOME) on timeout."""
        if not self._inbox:
            if not self._sock.poll(int((timeout_s or self.timeout_s) * 1000), zmq.POLLIN):
                self._reopen()
                raise RemoteError(ErrorCode.UNKNOWN_OUTCOME, f"{self.endpoint} did not answer")
            self._inbox.extend(protocol.unbatch(*protocol.decode(self._sock.recv())))
        return self._inbox.popleft()

    def call(self, message: NamedTuple, timeout_s: float | None = None) -> Any:
        """Send a request and return its result (raises RemoteError)."""
        request_id = self.send(message)
        while True:
            reply_id, reply = self.receive(timeout_s)
            if reply_id == request_id:
                return _result(reply)

    def wait_connected(self, timeout_s: float) -> bool:
        """Poll until the DEALER has a live connection (ZMQ_IMMEDIATE lets sends through)."""
        return bool(self._sock.poll(int(timeout_s * 1000), zmq.POLLOUT))

    def _reopen(self) -> None:
        self._inbox.clear()
        self._sock.close(linger=0)
        self._sock = dealer(self._ctx, self.endpoint, self.curve)

    def close(self) -> None:
        self._sock.close(linger=0)
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
