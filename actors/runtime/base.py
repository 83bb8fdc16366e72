"""What every actor process shares: socket lifecycle, the poll loop, signals.

An actor stores its configuration in ``__init__``, creates its context and
sockets in ``start()``, polls with a timeout in ``run()`` (never a blocking
recv), and closes every socket with linger 0 and terminates the context in
``stop()``. SIGTERM and SIGINT only set a flag; the loop notices within
POLL_MS and the process exits 0.

``serve(sock)`` is the one receive loop of every actor: each time the socket
is readable it takes up to DRAIN_MAX messages, decodes them (Batch frames
included) and calls ``<prefix><tag>(ident, request_id, message)`` for each
(``ident`` is the ZMQ routing identity on a ROUTER, else None). Replies queued
with ``reply()`` leave once per drain, one frame per caller. A malformed
frame, an unknown tag or a handler raising ProtocolError is answered with a
PROTOCOL error; any other exception is logged and answered INTERNAL; the
actor carries on. A ``Ping`` on any served ROUTER is answered Ok(None) by the
loop itself (liveness, see actors.runtime.liveness); ``serve_liveness`` binds
a ROUTER for that alone in an actor that has none. ``before_drain()`` and
``after_drain()`` bracket each drain (e.g. to group-commit what the handlers
buffered).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any, NamedTuple

import zmq

from actors.runtime import protocol
from actors.runtime.logs import setup_logging
from actors.runtime.protocol import Error, ErrorCode
from actors.runtime.security import Curve
from actors.runtime.titles import set_title

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

__all__ = ["Actor", "run_actor", "setup_logging", "set_title", "monotonic_ms", "now_ms"]

POLL_MS = 100
"""Longest the loop sleeps without looking at the stop flag and timers."""

DRAIN_MAX = 2048
"""Messages taken from one socket per loop turn, so one busy socket cannot starve others."""


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Actor:
    """Base class: subclasses implement setup(), optionally on_tick() and teardown()."""

    name = "actor"

    def __init__(self, curve: Curve | None = None) -> None:
        self.log = logging.getLogger(self.name)
        self.ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sockets: list[zmq.Socket[bytes]] = []
        self._handlers: list[tuple[zmq.Socket[bytes], Callable[[], None]]] = []
        self._poller = zmq.Poller()
        self._stopping = False
        self.curve = curve
        self._curve_roles: dict[zmq.Socket[bytes], str] = {}
        self._authenticator: ThreadAuthenticator | None = None
        self._replies: dict[tuple[zmq.Socket[bytes], bytes], list[tuple[NamedTuple, int]]] = {}
        self._reply_socket: zmq.Socket[bytes] | None = None
        self._served: dict[zmq.Socket[bytes], str] = {}  # socket -> handler prefix

    # --- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        """Create the context and sockets; install the signal handlers."""
        self.ctx = zmq.Context()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.setup()

    def setup(self) -> None:
        """Create and bind/connect sockets (subclass)."""

    def teardown(self) -> None:
        """Release what setup() made besides sockets (subclass)."""

    def on_tick(self) -> None:
        """Timers: called after every loop turn (subclass)."""

    def poll_timeout_ms(self) -> int:
        """How long the next poll may wait."""
        return POLL_MS

    def run(self) -> None:
        """Poll and dispatch until a stop is requested.

        A handler that raises is logged with its traceback and the loop goes on:
        one bad message must not take the actor down. Only BaseException stops it.
        """
        while not self._stopping:
            events = dict(self._poller.poll(self.poll_timeout_ms()))
            for sock, handler in self._handlers:
                if sock in events:
                    self._guarded(handler)
            self._guarded(self.on_tick)

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception:
            self.log.exception("%s failed; carrying on", getattr(step, "__name__", step))

    def stop(self) -> None:
        """Close every socket with linger 0, then terminate the context."""
        try:
            self.teardown()
            self.flush_replies()
        finally:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
            if self._authenticator is not None:
                self._authenticator.stop()
                self._authenticator = None
            if self.ctx is not None:
                self.ctx.term()
                self.ctx = None

    def request_stop(self) -> None:
        self._stopping = True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._stopping = True

    # --- the serve loop ------------------------------------------------------

    def serve(self, sock: zmq.Socket[bytes], prefix: str = "handle_") -> None:
        """Dispatch every message arriving on ``sock`` to ``<prefix><tag>``.

        The first ROUTER served is where ``reply()`` sends by default.
        """
        routed = sock.type == zmq.ROUTER
        self._served[sock] = prefix
        if routed and self._reply_socket is None:
            self._reply_socket = sock
        self._poller.register(sock, zmq.POLLIN)
        self._handlers.append((sock, lambda: self._drain(sock, prefix, routed)))

    def serve_liveness(self, endpoint: str) -> zmq.Socket[bytes]:
        """Bind a ROUTER at ``endpoint`` that answers only Ping: the supervisor's probe
        of an actor that serves no ROUTER of its own (it only connects out)."""
        sock = self.server_socket(zmq.ROUTER)
        self.serve(sock, prefix="liveness_")
        sock.bind(endpoint)
        return sock

    def before_drain(self, sock: zmq.Socket[bytes]) -> None:
        """Called before each drain of a served socket (subclass)."""

    def after_drain(self, sock: zmq.Socket[bytes]) -> None:
        """Called after each drain, before replies are flushed (subclass)."""

    def _drain(self, sock: zmq.Socket[bytes], prefix: str, routed: bool) -> None:
        self.before_drain(sock)
        for _ in range(DRAIN_MAX):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            ident = frames[0] if routed else None
            try:
                if routed and len(frames) != 2:
                    raise protocol.ProtocolError(f"{len(frames) - 1} body frames, expected 1")
                pairs = protocol.unbatch(*protocol.decode(frames[-1]))
            except protocol.ProtocolError as exc:
                self.log.warning("malformed message: %s", exc)
                if ident is not None:
                    self.reply(ident, 0, Error(ErrorCode.PROTOCOL, str(exc)), sock)
                continue
            for request_id, message in pairs:
                self._dispatch(sock, prefix, ident, request_id, message)
        self.after_drain(sock)
        self.flush_replies()

    def _dispatch(
        self,
        sock: zmq.Socket[bytes],
        prefix: str,
        ident: bytes | None,
        request_id: int,
        message: NamedTuple,
    ) -> None:
        if isinstance(message, protocol.Ping):
            if ident is not None:
                self.reply(ident, request_id, protocol.Ok(None), sock)
            return
        tag = protocol.tag_of(message)
        handler: Callable[[bytes | None, int, Any], None] | None = getattr(self, prefix + tag, None)
        try:
            if handler is None:
                raise protocol.ProtocolError(f"{self.name} does not handle {tag}")
            handler(ident, request_id, message)
        except protocol.ProtocolError as exc:
            self.log.warning("%s", exc)
            if ident is not None:
                self.reply(ident, request_id, Error(ErrorCode.PROTOCOL, str(exc)), sock)
        except Exception as exc:
            self.log.exception("%s failed", tag)
            if ident is not None:
                self.reply(ident, request_id, Error(ErrorCode.INTERNAL, repr(exc)), sock)

    def reply(
        self,
        ident: bytes,
        request_id: int,
        message: NamedTuple,
        sock: zmq.Socket[bytes] | None = None,
    ) -> None:
        """Queue a reply; flush_replies() sends each caller's replies as one frame."""
        target = sock or self._reply_socket
        assert target is not None, "reply() with no socket before serve() of a ROUTER"
        key = (target, ident)
        queued = self._replies.get(key)
        if queued is None:
            self._replies[key] = [(message, request_id)]
        else:
            queued.append((message, request_id))

    def flush_replies(self) -> None:
        if not self._replies:
            return
        for (sock, ident), replies in self._replies.items():
            body = (
                protocol.encode(*replies[0])
                if len(replies) == 1
                else protocol.encode_batch(replies)
            )
            sock.send_multipart([ident, body])
        self._replies = {}

    # --- sockets -----------------------------------------------------------

    def socket(self, kind: int, handler: Callable[[], None] | None = None) -> zmq.Socket[bytes]:
        """A socket with linger 0 and the frame size cap, polled if it has a handler."""
        assert self.ctx is not None, "socket() before start()"
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        self._sockets.append(sock)
        if handler is not None:
            self._poller.register(sock, zmq.POLLIN)
            self._handlers.append((sock, handler))
        return sock

    def server_socket(
        self, kind: int, handler: Callable[[], None] | None = None
    ) -> zmq.Socket[bytes]:
        """A socket to bind: a CURVE server admitting only authorized keys, if configured."""
        sock = self.socket(kind, handler)
        if self.curve is not None:
            if self._authenticator is None:
                assert self.ctx is not None
                self._authenticator = self.curve.authenticator(self.ctx)
            self.curve.serve(sock)
            self._curve_roles[sock] = "server"
        return sock

    def client_socket(
        self, kind: int, handler: Callable[[], None] | None = None
    ) -> zmq.Socket[bytes]:
        """A socket to connect: a CURVE client, if configured."""
        sock = self.socket(kind, handler)
        if self.curve is not None:
            self.curve.connect_as_client(sock)
            self._curve_roles[sock] = "client"
        return sock

    def replace_socket(self, old: zmq.Socket[bytes], kind: int) -> zmq.Socket[bytes]:
        """Close a socket and make a fresh one with the same handler and role (lazy pirate)."""
        role = self._curve_roles.pop(old, None)
        prefix = self._served.pop(old, None)
        handler = None
        for i, (sock, h) in enumerate(self._handlers):
            if sock is old:
                handler = h
                del self._handlers[i]
                self._poller.unregister(old)
                break
        self._sockets.remove(old)
        old.close(linger=0)
        if prefix is not None:
            handler = None  # served again below, draining the new socket
        if role == "server":
            new = self.server_socket(kind, handler)
        elif role == "client":
            new = self.client_socket(kind, handler)
        else:
            new = self.socket(kind, handler)
        if prefix is not None:
            self.serve(new, prefix)
        return new


def run_actor(actor: Actor, title: str) -> int:
    """Run an actor to completion in this process; returns the exit status."""
    set_title(title)
    actor.start()
    try:
        actor.run()
    finally:
        actor.stop()
    actor.log.info("stopped")
    return 0
