"""An actor whose work is asyncio: a PostgreSQL poller, reaper or worker beside HTTP.

The services' actors talk to PostgreSQL through asyncpg, which is asyncio
only, so they run an event loop instead of ``Actor``'s zmq poll loop; the
lifecycle is the same. ``__init__`` stores config only; ``main()`` makes the
context, calls ``setup()`` (bind with ``serve()``, or ``serve_liveness()`` when it
serves nothing else; start timers with ``every()``), runs until SIGTERM/SIGINT, then
cancels its tasks, calls ``teardown()``, closes every socket with linger 0 and
terminates the context.

Messages on a served ROUTER are handled one at a time, in arrival order, by
``handle_<tag>(message)`` (plain or ``async def``), as an actor should: a
handler that needs concurrency spawns a task. A request (request_id != 0)
gets the handler's return value as ``Ok``; a ``Ping`` is answered Ok(None)
by the loop itself (liveness, see actors.runtime.liveness); ``ActorError`` becomes an
``Error`` with its code; any other exception is logged with its traceback
and answered INTERNAL, and the actor keeps running. A one-way message (a
``tell``, request_id 0) gets no reply.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import zmq
import zmq.asyncio

from actors.runtime import protocol
from actors.runtime.base import set_title
from actors.runtime.protocol import Error, ErrorCode, Ok
from actors.runtime.security import Curve

if TYPE_CHECKING:
    from zmq.auth.thread import ThreadAuthenticator

__all__ = ["AsyncActor", "ActorError", "run_async_actor"]

TIMER_ERROR_PAUSE_S = 1.0
"""After a periodic job raises, wait at least this long before the next run."""

T = TypeVar("T")


class ActorError(Exception):
    """Raised by a handler to answer ``Error(code, reason)``; nothing was changed."""

    def __init__(self, code: str, reason: str, retry_after_s: int = 0) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.retry_after_s = retry_after_s


class AsyncActor:
    """Subclass: set ``name``; implement ``setup()``, ``teardown()`` and ``handle_<tag>``."""

    name = "actor"

    def __init__(self, curve: Curve | None = None) -> None:
        self.log = logging.getLogger(self.name)
        self.curve = curve
        self.ctx: zmq.asyncio.Context | None = None
        self._sockets: list[zmq.asyncio.Socket] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped: asyncio.Event | None = None
        self._authenticator: ThreadAuthenticator | None = None

    # --- for subclasses ------------------------------------------------------

    async def setup(self) -> None:
        """Open connections, bind with serve(), start timers with every()."""

    async def teardown(self) -> None:
        """Close what setup() opened besides sockets (pools, clients)."""

    def serve(self, endpoint: str, prefix: str = "handle_") -> zmq.asyncio.Socket:
        """Bind a ROUTER at ``endpoint`` and dispatch its messages to ``<prefix><tag>``."""
        assert self.ctx is not None, "serve() before main()"
        sock = self.ctx.socket(zmq.ROUTER)
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, protocol.MAX_FRAME_BYTES)
        if self.curve is not None:
            if self._authenticator is None:
                self._authenticator = self.curve.authenticator(self.ctx)
            self.curve.serve(sock)
        sock.bind(endpoint)
        self._sockets.append(sock)
        self.spawn(self._receive(sock, prefix), f"serve {endpoint}")
        return sock

    def serve_liveness(self, endpoint: str) -> zmq.asyncio.Socket:
        """Bind a ROUTER at ``endpoint`` that answers only Ping: the supervisor's probe
        of an actor that serves no ROUTER of its own (it only talks to PostgreSQL)."""
        return self.serve(endpoint, prefix="liveness_")

    def every(
        self, seconds: float, job: Callable[[], Awaitable[object]], what: str = ""
    ) -> asyncio.Task[None]:
        """Run ``await job()`` now and then every ``seconds`` (after each run ends)."""
        return self.spawn(self._repeat(seconds, job, what or job.__name__), what)

    def spawn(self, coro: Awaitable[T], what: str = "") -> asyncio.Task[T]:
        """A task owned by the actor: cancelled at stop; its crash is logged, not lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, what))
        return task

    def request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    @property
    def stopping(self) -> bool:
        return self._stopped is not None and self._stopped.is_set()

    # --- lifecycle -------------------------------------------------------------

    async def main(self) -> int:
        """Run until SIGTERM/SIGINT; returns the exit status (0 on a clean stop)."""
        loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stopped.set)
        self.ctx = zmq.asyncio.Context()
        try:
            await self.setup()
            await self._stopped.wait()
        finally:
            await self._shutdown()
        self.log.info("stopped")
        return 0

    async def _shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await self.teardown()
        finally:
            for sock in self._sockets:
                sock.close(linger=0)
            self._sockets.clear()
            if self._authenticator is not None:
                self._authenticator.stop()
            if self.ctx is not None:
                self.ctx.term()

    def _task_done(self, task: asyncio.Task[Any], what: str) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("%s crashed", what or "a task", exc_info=task.exception())

    async def _repeat(
        self, seconds: float, job: Callable[[], Awaitable[object]], what: str
    ) -> None:
        while True:
            try:
                await job()
                await asyncio.sleep(seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.log.exception("%s failed; trying again", what)
                await asyncio.sleep(max(seconds, TIMER_ERROR_PAUSE_S))

    # --- messages --------------------------------------------------------------

    async def _receive(self, sock: zmq.asyncio.Socket, prefix: str) -> None:
        while True:
            frames = await sock.recv_multipart()
            if len(frames) != 2:
                self.log.warning("dropped a message of %d frames", len(frames))
                continue
            ident, body = frames
            try:
                pairs = protocol.unbatch(*protocol.decode(body))
            except protocol.ProtocolError as exc:
                self.log.warning("malformed message: %s", exc)
                await sock.send_multipart(
                    [ident, protocol.encode(Error(ErrorCode.PROTOCOL, str(exc)))]
                )
                continue
            replies: list[tuple[NamedTuple, int]] = []
            for request_id, message in pairs:
                reply = await self._handle(message, prefix)
                if request_id:
                    replies.append((reply, request_id))
            if replies:
                out = (
                    protocol.encode(*replies[0])
                    if len(replies) == 1
                    else protocol.encode_batch(replies)
                )
                await sock.send_multipart([ident, out])

    async def _handle(self, message: NamedTuple, prefix: str) -> Ok | Error:
        if isinstance(message, protocol.Ping):  # liveness: the loop is turning
            return Ok(None)
        tag = protocol.tag_of(message)
        handler: Callable[[Any], object] | None = getattr(self, f"{prefix}{tag}", None)
        if handler is None:
            return Error(ErrorCode.PROTOCOL, f"{self.name} does not handle {tag}")
        try:
            result = handler(message)
            if inspect.isawaitable(result):
                result = await result
        except ActorError as exc:
            return Error(exc.code, exc.reason, exc.retry_after_s)
        except Exception as exc:
            self.log.exception("%s failed", tag)
            return Error(ErrorCode.INTERNAL, repr(exc))
        return Ok(result)


def run_async_actor(actor: AsyncActor, title: str) -> int:
    """Run an AsyncActor to completion in this process (uvloop); returns the exit status."""
    set_title(title)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - installed with uvicorn[standard]
        return asyncio.run(actor.main())
    return uvloop.run(actor.main())
