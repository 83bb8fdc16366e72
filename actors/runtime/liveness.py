"""Liveness judged by the data path: a Ping through the actor's own socket, answered by
the same loop that serves its requests.

A process can be running and still be useless: stopped (SIGSTOP), deadlocked, stuck in
a loop. Its supervisor sees none of that from waitpid. ``protocol.Ping`` is answered by
every actor's serve loop on any ROUTER it serves (``actors.runtime.base`` and
``async_actor``), so an answer means the loop that serves requests is turning; an actor
with no ROUTER of its own (a bridge that only connects out) binds one for the probe.
``LivenessProbe`` is the supervisor's side: it never blocks, and says a child is hung
when no Ping has been answered for HANG_AFTER_S while it used no CPU for IDLE_S
(stopped, or blocked on a lock it will never get), or for BUSY_HANG_S whatever it did
(spinning), or for START_GRACE_S before its first answer (importing and binding).

NOTE: a Ping waits behind whatever the actor's socket already holds. A storage actor
replaying a long log has the whole of it queued (the broker sends as fast as the bus
reads): measured on 1,000,000 logged sets, a Ping waited 2.2 s there on a busy 2-core
machine. Such an actor is busy, not hung: its CPU time grows. Judging silence alone
against a short bound would kill it mid-replay, again after every restart.

One Ping is in flight at a time, asked again only once answered: ZMQ loses a message
only with its connection (the DEALER sets ZMQ_IMMEDIATE, so a Ping is taken only once
the actor's socket has completed the handshake), and a new process gets a new
connection (``restart()``). The first Ping goes out as soon as ZMQ takes it, so a
child's first answer comes as soon as its loop turns.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import zmq

# NOTE: zmq and the protocol (msgpack) are imported by the first check(), once the
# supervisor has started its children: what it imports before delays every one of them.

__all__ = [
    "BUSY_HANG_S",
    "HANG_AFTER_S",
    "IDLE_S",
    "PING_EVERY_S",
    "START_GRACE_S",
    "LivenessProbe",
]

PING_EVERY_S = 0.5
"""How often a probe asks, once the last Ping was answered."""
HANG_AFTER_S = 3.0
"""No Ping answered for this long, with no CPU used for IDLE_S: hung (stopped, deadlocked)."""
IDLE_S = 1.0
"""CPU time unchanged this long (in clock ticks, 10 ms): the process does nothing."""
BUSY_HANG_S = 60.0
"""No Ping answered for this long even while it uses CPU: hung (spinning). Far above the
longest legitimate wait measured (bench.grades.liveness_stalls)."""
START_GRACE_S = 20.0
"""Before its first answer a child is starting (importing, restoring its socket's peer
list): hung only after this long. Starts on a loaded 2-core machine take seconds."""


class LivenessProbe:
    """Pings one actor's endpoint from a polling loop (a supervisor's), without blocking.

    ``check()`` is called every few tens of milliseconds; ``restart()`` when the actor's
    process is replaced, so time waiting for a dead process's answer is not held against
    the new one.
    """

    def __init__(self, endpoint: str, curve_dir: str = "") -> None:
        self.endpoint = endpoint
        self.curve_dir = curve_dir
        """CurveZMQ keys (as ``Curve.load`` takes them) when the actor's socket needs them."""
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._asked_at = 0.0
        self._answered_at = time.monotonic()
        self._answered_once = False
        self._request_id = 0
        self._cpu: tuple[int, float, float] = (0, -1.0, 0.0)
        """(pid, its CPU seconds when last seen to change, when that was)."""

    def restart(self) -> None:
        """A new process: forget the old one's silence and any Ping it still owes."""
        self._close_socket()
        self._asked_at = 0.0
        self._answered_at = time.monotonic()
        self._answered_once = False

    @property
    def answered(self) -> bool:
        """Whether the current process has answered a Ping yet."""
        return self._answered_once

    def silent_for(self) -> float:
        """Seconds since the actor last answered (or since restart())."""
        return time.monotonic() - self._answered_at

    def idle_for(self, pid: int) -> float:
        """Seconds since the process's CPU time last changed (0 if it cannot be read)."""
        import psutil

        now = time.monotonic()
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            return 0.0
        used = times.user + times.system
        seen_pid, seen_used, since = self._cpu
        if seen_pid != pid or used != seen_used:
            self._cpu = (pid, used, now)
            return 0.0
        return now - since

    def check(self, pid: int) -> bool:
        """Read any answer, ask again if due; False once process ``pid`` counts as hung."""
        import zmq

        from actors.runtime import protocol

        sock = self._socket()
        now = time.monotonic()
        while sock.poll(0, zmq.POLLIN):
            for request_id, message in protocol.unbatch(*protocol.decode(sock.recv())):
                if request_id == self._request_id and isinstance(message, protocol.Ok):
                    self._answered_at, self._asked_at, self._answered_once = now, 0.0, True
        due = not self._answered_once or now - self._answered_at >= PING_EVERY_S
        if not self._asked_at and due:
            self._request_id += 1
            try:
                sock.send(protocol.encode(protocol.Ping(), self._request_id), zmq.NOBLOCK)
                self._asked_at = now
            except zmq.Again:  # not connected (not bound yet): asked again next check
                pass
        silent = now - self._answered_at
        if not self._answered_once:
            return silent < START_GRACE_S
        idle = self.idle_for(pid) if self._asked_at else 0.0  # sampled while it owes one
        return silent < HANG_AFTER_S or (silent < BUSY_HANG_S and idle < IDLE_S)

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def _socket(self) -> zmq.Socket[bytes]:
        if self._sock is None:
            import zmq

            from actors.runtime.client import dealer
            from actors.runtime.security import Curve

            self._ctx = self._ctx or zmq.Context()
            self._sock = dealer(self._ctx, self.endpoint, Curve.load(self.curve_dir))
        return self._sock

    def close(self) -> None:
        self.restart()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
