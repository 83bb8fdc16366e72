"""What every actor process shares: socket lifecycle, the poll loop, signals.

An actor stores its configuration in ``__init__``, creates its context and
sockets in ``start()``, polls with a timeout in ``run()`` (never a blocking
recv), and closes every socket with linger 0 and terminates the context in
``stop()``. SIGTERM and SIGINT only set a flag; the loop notices within
POLL_MS and the process exits 0.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Callable

import zmq

from actors.runtime import protocol
from actors.runtime.logs import setup_logging
from actors.runtime.security import Curve

__all__ = ["Actor", "run_actor", "setup_logging", "set_title", "monotonic_ms", "now_ms"]

POLL_MS = 100
"""Longest the loop sleeps without looking at the stop flag and timers."""

DRAIN_MAX = 2048
"""Messages taken from one socket per loop turn, so one busy socket cannot starve others."""


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def set_title(title: str) -> None:
    """Name the process for ps/top, e.g. 'grades: storage replica=1'."""
    try:
        import setproctitle
    except ImportError:  # pragma: no cover - installed with the project
        return
    setproctitle.setproctitle(title)


class Actor:
    """Base class: subclasses implement setup(), optionally on_tick() and teardown()."""

    name = "actor"

    def __init__(self, curve: Curve | None = None):
        self.log = logging.getLogger(self.name)
        self.ctx: zmq.Context | None = None
        self._sockets: list[zmq.Socket] = []
        self._handlers: list[tuple[zmq.Socket, Callable[[], None]]] = []
        self._poller = zmq.Poller()
        self._stopping = False
        self.curve = curve
        self._curve_roles: dict[zmq.Socket, str] = {}
        self._authenticator = None

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

    def _on_signal(self, signum, _frame) -> None:
        self._stopping = True

    # --- sockets -----------------------------------------------------------

    def socket(self, kind: int, handler: Callable[[], None] | None = None) -> zmq.Socket:
        """A socket with linger 0 and the frame size cap, polled if it has a handler."""
        sock = self.ctx.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        self._sockets.append(sock)
        if handler is not None:
            self._poller.register(sock, zmq.POLLIN)
            self._handlers.append((sock, handler))
        return sock

    def server_socket(self, kind: int, handler: Callable[[], None] | None = None) -> zmq.Socket:
        """A socket to bind: a CURVE server admitting only authorized keys, if configured."""
        sock = self.socket(kind, handler)
        if self.curve is not None:
            if self._authenticator is None:
                self._authenticator = self.curve.authenticator(self.ctx)
            self.curve.serve(sock)
            self._curve_roles[sock] = "server"
        return sock

    def client_socket(self, kind: int, handler: Callable[[], None] | None = None) -> zmq.Socket:
        """A socket to connect: a CURVE client, if configured."""
        sock = self.socket(kind, handler)
        if self.curve is not None:
            self.curve.connect_as_client(sock)
            self._curve_roles[sock] = "client"
        return sock

    def replace_socket(self, old: zmq.Socket, kind: int) -> zmq.Socket:
        """Close a socket and make a fresh one with the same handler and role (lazy pirate)."""
        role = self._curve_roles.pop(old, None)
        handler = None
        for i, (sock, h) in enumerate(self._handlers):
            if sock is old:
                handler = h
                del self._handlers[i]
                self._poller.unregister(old)
                break
        self._sockets.remove(old)
        old.close(linger=0)
        if role == "server":
            return self.server_socket(kind, handler)
        if role == "client":
            return self.client_socket(kind, handler)
        return self.socket(kind, handler)


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
