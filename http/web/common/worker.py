"""The gunicorn worker class of every HTTP server: uvicorn, tuned.

uvloop and httptools are pinned (not "auto", so a missing one fails loudly);
the per-request access log line and the proxy-headers middleware are off: they
cost a LogRecord and a header scan per request and nothing here reads them.

httptools itself puts no bound on a request's head, so a client could send an
endless header and grow the worker's memory; BoundedHeadProtocol counts the
bytes of each request head as they arrive and answers 431 past MAX_HEAD_BYTES.

A worker stops with its master (SIGTERM when the master dies, even by SIGKILL):
uvicorn's worker never looks at its parent, so orphans kept serving and held the
port the restarted master needs.
"""

import os

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn_worker import UvicornWorker

from actors.runtime.lifeline import die_with_parent
from actors.runtime.logs import setup_logging

__all__ = ["Worker", "BoundedHeadProtocol", "MAX_HEAD_BYTES"]

MAX_HEAD_BYTES = 32 * 1024
"""Request line plus headers; nginx's default buffers allow about as much."""

_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\n"
    b"connection: close\r\n"
    b"content-length: 52\r\n\r\n"
    b'{"error": "headers: larger than 32768 bytes in all"}'
)


class BoundedHeadProtocol(HttpToolsProtocol):
    """httptools protocol that refuses request heads over MAX_HEAD_BYTES."""

    _in_head = True
    _head_bytes = 0
    _refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        # NOTE: parsed first: a chunk that ends the head may carry a large body with it;
        # the body is the body limit's business (413), the head is measured exactly below.
        if self._refused or (self._in_head and self._head_bytes > MAX_HEAD_BYTES):
            self._refuse()

    def _refuse(self) -> None:
        self._refused, self._in_head = True, False
        self.transport.write(_TOO_LARGE)
        self.transport.close()

    def on_headers_complete(self) -> None:
        head_bytes = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if head_bytes > MAX_HEAD_BYTES:
            self._refused = True  # answered by data_received once the parser returns
            return
        self._in_head = False
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0


class Worker(UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no types
    """uvicorn under gunicorn with uvloop, httptools and a bounded request head."""

    CONFIG_KWARGS = {
        "loop": "uvloop",
        "http": BoundedHeadProtocol,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
    }

    def init_process(self) -> None:
        """In the forked worker, first: die with the master (see the module docstring),
        and log like every other process (else Python's last-resort handler prints
        libraries' warnings, asyncpg's pool among them, as bare unformatted lines)."""
        die_with_parent()
        if os.getppid() != self.ppid:  # the master died before the call
            raise SystemExit(0)
        setup_logging("web")
        super().init_process()
