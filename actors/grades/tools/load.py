"""``grades load``: POST /set every row of a file to a replica, many at a time.

A write through the API, not a restore: every row gets new versions (the
replica stamps it now), exactly as if a client had sent it.

``connections`` keep-alive HTTP/1.1 connections (asyncio streams, standard
library only, uvloop when installed) each send one request at a time. Rows are
routed to a connection by user_id, so two rows of the same user are sent in
file order and the later one wins. Per row:

- 200: loaded;
- 503 (and 429), 502, 504, a dropped connection, a timeout: retried, waiting as long as
  ``Retry-After`` says (at most RETRY_AFTER_MAX_S) or backing off, up to
  ``attempts`` tries; then the row counts as a failure. Retrying is safe: a
  set merges, sending it twice leaves the same values;
- any other 4xx: the load stops at once, naming the row's line (the file or
  the credentials are wrong, and every other row would fail alike);
- any other status: a failure, not retried.

More than ``max_failures`` failures stop the load too. A row the file reader
rejects (see actors/tool_input.py) stops the reading: the rows before it are
still sent, none after it.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.parse
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from actors.grades.tools.progress import Progress, format_rows
from actors.grades.tools.remote import ToolError, endpoint, error_text
from actors.grades.tools.rows import InputError, Row

__all__ = ["LoadOptions", "LoadResult", "SetTarget", "check_reachable", "load_rows"]

DEFAULT_CONNECTIONS = 32
DEFAULT_ATTEMPTS = 10
DEFAULT_MAX_FAILURES = 100
REQUEST_TIMEOUT_S = 30.0
"""Longest wait for one response; the replica answers a set within ~5 s or says 504."""
CONNECT_TIMEOUT_S = 5.0
RETRY_AFTER_DEFAULT_S = 1.0
RETRY_AFTER_MAX_S = 30.0
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
QUEUE_ROWS = 64
T = TypeVar("T")
"""Rows waiting per connection: enough to keep it busy, little enough to stop fast."""
FAILURES_SHOWN = 10
RESPONSE_HEAD_MAX_BYTES = 64 * 1024
RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Retried after the response's Retry-After."""
BACKOFF_STATUSES = frozenset({502, 504})
"""Retried after an exponential backoff (504: the write may have landed; resending is safe)."""


@dataclass(frozen=True)
class SetTarget:
    """Where and as whom to POST /set."""

    url: str
    """Full ``.../set`` URL."""
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str, user: str, password: str) -> SetTarget:
        """From a setter base URL (``http://host:8181``) or the ``/set`` URL itself."""
        return cls(endpoint(url, "/set"), user, password)

    @property
    def parts(self) -> urllib.parse.SplitResult:
        return urllib.parse.urlsplit(self.url)

    def request_head(self) -> bytes:
        """The request line and headers up to ``Content-Length: ``."""
        parts = self.parts
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return (
            f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Authorization: Basic {token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: "
        ).encode("latin-1")


@dataclass(frozen=True)
class LoadOptions:
    connections: int = DEFAULT_CONNECTIONS
    attempts: int = DEFAULT_ATTEMPTS
    """Tries per row on 429/502/503/504 and connection errors (the first one included)."""
    max_failures: int = DEFAULT_MAX_FAILURES


@dataclass
class LoadResult:
    """What a load did."""

    loaded: int = 0
    failed: int = 0
    seconds: float = 0.0
    stopped: str = ""
    """Why the load stopped before the end of the file ("" if it did not)."""
    failures: list[str] = field(default_factory=list)
    """The first FAILURES_SHOWN failures, one line each."""

    @property
    def rows_per_s(self) -> float:
        return self.loaded / max(self.seconds, 1e-9)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.stopped


class _Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body


class _BadResponse(Exception):
    """The server's bytes are not an HTTP/1.1 response we understand."""


CONNECTION_ERRORS = (
    TimeoutError,
    OSError,
    EOFError,
    asyncio.LimitOverrunError,
    _BadResponse,
    ValueError,
)
"""A request that got no usable response (EOFError covers asyncio.IncompleteReadError)."""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0], 16)
        except ValueError:
            raise _BadResponse(f"bad chunk size {size_line[:40]!r}") from None
        if size == 0:
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass  # trailers
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


async def _read_response(reader: asyncio.StreamReader) -> _Response:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
        raise _BadResponse(f"not an HTTP response: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        headers["connection"] = "close"
        body = await reader.read()
    return _Response(int(status_line[1]), headers, body)


class _Connection:
    """One keep-alive connection, (re)opened on demand."""

    def __init__(self, target: SetTarget):
        self.target = target
        self._head = target.request_head()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        parts = self.target.parts
        tls = ssl.create_default_context() if parts.scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        self._reader, self._writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, port, ssl=tls, limit=RESPONSE_HEAD_MAX_BYTES),
            CONNECT_TIMEOUT_S,
        )

    async def post(self, body: bytes) -> _Response:
        if self._writer is None:
            await self.open()
        assert self._reader is not None and self._writer is not None
        self._writer.write(self._head + str(len(body)).encode() + b"\r\n\r\n" + body)
        response = await _read_response(self._reader)
        if response.headers.get("connection", "").lower() == "close":
            self.close()
        return response

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def _retry_after_s(response: _Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", RETRY_AFTER_DEFAULT_S))
    except ValueError:  # an HTTP date: not worth parsing for a bounded wait
        seconds = RETRY_AFTER_DEFAULT_S
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_S)


def _backoff_s(attempt: int) -> float:
    return min(BACKOFF_FIRST_S * 2.0**attempt, BACKOFF_MAX_S)


def _describe(row: Row) -> str:
    return f"line {row.line} (user_id {row.user_id!r})"


class _Loader:
    """Shared state of one load: counters, the stop flag, the connections' queues."""

    def __init__(self, target: SetTarget, options: LoadOptions, progress: Progress):
        self.target = target
        self.options = options
        self.progress = progress
        self.result = LoadResult()

    def stop(self, reason: str) -> None:
        if not self.result.stopped:
            self.result.stopped = reason

    def fail(self, row: Row, reason: str) -> None:
        self.result.failed += 1
        if len(self.result.failures) < FAILURES_SHOWN:
            self.result.failures.append(f"{_describe(row)}: {reason}")
        if self.result.failed > self.options.max_failures:
            self.stop(
                f"more than {self.options.max_failures} rows failed; last: "
                f"{_describe(row)}: {reason}"
            )

    async def send(self, row: Row, conn: _Connection) -> None:
        """POST one row, retrying as the module docstring says."""
        reason, wait_s = "", 0.0
        for attempt in range(self.options.attempts):
            if attempt:
                await asyncio.sleep(wait_s)
                if self.result.stopped:
                    return
            try:
                response = await asyncio.wait_for(conn.post(row.body), REQUEST_TIMEOUT_S)
            except CONNECTION_ERRORS as exc:
                conn.close()
                reason = f"connection: {exc.__class__.__name__}: {exc}".rstrip(": ")
                wait_s = _backoff_s(attempt)
                continue
            if response.status == 200:
                self.result.loaded += 1
                self.progress.add(1)
                return
            reason = f"HTTP {response.status}: {error_text(response.body)}"
            if response.status in RETRY_AFTER_STATUSES:
                wait_s = _retry_after_s(response)
            elif response.status in BACKOFF_STATUSES:
                wait_s = _backoff_s(attempt)
            elif 400 <= response.status < 500:
                self.stop(f"{_describe(row)}: {reason}")
                return
            else:
                break
        self.fail(row, f"{reason} (after {attempt + 1} attempts)")

    async def worker(self, queue: asyncio.Queue[Row | None]) -> None:
        conn = _Connection(self.target)
        try:
            while (row := await queue.get()) is not None:
                if self.result.stopped:
                    continue  # drain, so the dispatcher never blocks on a full queue
                try:
                    await self.send(row, conn)
                except Exception as exc:  # noqa: BLE001 - a bug must stop the load, not hang it
                    self.stop(f"{_describe(row)}: internal error: {exc!r}")
        finally:
            conn.close()

    async def run(self, rows: Iterable[Row]) -> LoadResult:
        queues: list[asyncio.Queue[Row | None]] = [
            asyncio.Queue(QUEUE_ROWS) for _ in range(self.options.connections)
        ]
        workers = [asyncio.create_task(self.worker(queue)) for queue in queues]
        input_error = ""
        try:
            for row in rows:
                if self.result.stopped:
                    break
                await queues[hash(row.user_id) % len(queues)].put(row)
        except InputError as exc:
            input_error = str(exc)  # the rows before it are valid: let them go out
        except BaseException:
            self.stop("interrupted")
            raise
        finally:
            for queue in queues:
                await queue.put(None)
            await asyncio.gather(*workers)
        if input_error:
            self.stop(input_error)
        self.progress.stop()
        self.result.seconds = self.progress.elapsed_s
        return self.result


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def load_rows(
    rows: Iterable[Row],
    target: SetTarget,
    options: LoadOptions = LoadOptions(),
    progress: Progress | None = None,
) -> LoadResult:
    """POST /set each row; see the module docstring for retries and stops.

    Args:
        rows: e.g. ``RowFile(path).rows()``; an InputError it raises stops the load.
        target: the setter and credentials.
        options: concurrency and retry bounds.
        progress: counts loaded rows; one is made (stderr) if not given.

    Returns:
        Counts, timing, and why the load stopped early if it did.
    """
    progress = progress or Progress("load", format_rows)
    return _run(_Loader(target, options, progress).run(rows))


def check_reachable(target: SetTarget) -> None:
    """Open (and close) one connection to the setter.

    Raises:
        ToolError: the setter does not accept connections.
    """

    async def probe() -> None:
        conn = _Connection(target)
        try:
            await conn.open()
        except (TimeoutError, OSError) as exc:
            reason = str(exc) or exc.__class__.__name__
            raise ToolError(f"{target.url}: unreachable: {reason}") from None
        finally:
            conn.close()

    _run(probe())
