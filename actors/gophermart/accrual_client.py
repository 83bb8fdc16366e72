"""A small asyncio HTTP/1.1 client for the accrual system: GET with keep-alive.

The poller asks `GET {base}/api/orders/{number}` thousands of times; a pool of at most
`max_connections` kept-alive connections serves those requests, each bounded by a
timeout. Only what the accrual system speaks is implemented: GET, Content-Length or
chunked bodies, `Connection: close`. A request on a reused connection that the server
closed meanwhile is retried once on a fresh one (GET is idempotent).

`ask(number)` turns the reply into an `Answer` the poller acts on.
"""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import quote, urlsplit

import msgspec

from actors.shared.money import DECODER, round_kopecks

__all__ = ["AccrualClient", "Answer", "HTTPError", "Response", "parse_retry_after"]

REQUEST_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 1024 * 1024
DEFAULT_RETRY_AFTER_S = 60.0
"""A 429 without a usable Retry-After: wait the course accrual's usual minute."""
MAX_RETRY_AFTER_S = 3600.0


class HTTPError(Exception):
    """No usable response: refused, reset, timed out, or not HTTP."""


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers keep the last value
    body: bytes


@dataclass(frozen=True, slots=True)
class Answer:
    """What the accrual system said about an order.

    kind: "final" (status PROCESSED with accrual_kop, or INVALID), "pending"
    (REGISTERED or PROCESSING), "unknown" (204: not registered yet), "limited" (429,
    retry_after_s), "failed" (5xx, timeout, garbage; reason says which).
    """

    kind: str
    status: str | None = None
    accrual_kop: int | None = None
    retry_after_s: float = 0.0
    reason: str = ""


def parse_retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), bounded."""
    if not value:
        return DEFAULT_RETRY_AFTER_S
    value = value.strip()
    if value.isascii() and value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return DEFAULT_RETRY_AFTER_S
    left = when - (time.time() if now is None else now)
    return min(max(left, 0.0), MAX_RETRY_AFTER_S)


class _Accrual(msgspec.Struct):
    order: str
    status: str
    accrual: int | Decimal | None = None


_STATUSES = frozenset({"REGISTERED", "PROCESSING", "INVALID", "PROCESSED"})


def answer_from(response: Response, number: str) -> Answer:
    """The poller's view of one HTTP response about `number`."""
    if response.status == 204:
        return Answer("unknown")
    if response.status == 429:
        return Answer(
            "limited", retry_after_s=parse_retry_after(response.headers.get("retry-after"))
        )
    if response.status != 200:
        return Answer("failed", reason=f"HTTP {response.status}")
    try:
        reply = msgspec.convert(DECODER.decode(response.body), _Accrual)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return Answer("failed", reason=f"bad body: {exc}")
    if reply.order != number or reply.status not in _STATUSES:
        return Answer("failed", reason=f"bad reply: order {reply.order!r} status {reply.status!r}")
    if reply.status in ("REGISTERED", "PROCESSING"):
        return Answer("pending", "PROCESSING")
    if reply.status == "INVALID":
        return Answer("final", "INVALID")
    try:
        kop = round_kopecks(Decimal(reply.accrual or 0) * 100)
    except InvalidOperation:
        return Answer("failed", reason=f"bad accrual {reply.accrual!r}")
    if kop < 0:
        return Answer("failed", reason=f"negative accrual {reply.accrual!r}")
    return Answer("final", "PROCESSED", kop)


class AccrualClient:
    """GET requests over a bounded pool of kept-alive connections to one base URL."""

    def __init__(
        self, base_url: str, max_connections: int = 8, timeout_s: float = REQUEST_TIMEOUT_S
    ):
        parts = urlsplit(base_url)
        self._host = parts.hostname or "localhost"
        self._tls = parts.scheme == "https"
        self._port = parts.port or (443 if self._tls else 80)
        self._host_header = parts.netloc
        self._timeout_s = timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def ask(self, number: str) -> Answer:
        """Ask about one order; never raises for what the network or server does."""
        try:
            response = await self.get(f"/api/orders/{quote(number, safe='')}")
        except HTTPError as exc:
            return Answer("failed", reason=str(exc))
        return answer_from(response, number)

    async def get(self, path: str) -> Response:
        """One GET; raises HTTPError when no complete response arrives in time."""
        async with self._slots:
            reused = bool(self._idle)
            try:
                return await self._attempt(path)
            except HTTPError:
                if not reused:
                    raise
            # The kept-alive connection had gone (an idle timeout, a restarted server):
            # the other idle ones likely too. Start afresh.
            await self.close()
            return await self._attempt(path)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()

    async def _attempt(self, path: str) -> Response:
        conn = self._idle.pop() if self._idle else None
        try:
            async with asyncio.timeout(self._timeout_s):
                if conn is None:
                    conn = await asyncio.open_connection(
                        self._host,
                        self._port,
                        ssl=ssl.create_default_context() if self._tls else None,
                    )
                reader, writer = conn
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {self._host_header}\r\n"
                    "Accept: application/json\r\nConnection: keep-alive\r\n\r\n".encode("ascii")
                )
                await writer.drain()
                response, keep = await _read_response(reader)
        except (
            OSError,
            EOFError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ValueError,
            TimeoutError,
        ) as exc:
            if conn is not None:
                conn[1].close()
            raise HTTPError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if keep:
            self._idle.append(conn)
        else:
            writer.close()
        return response


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD_BYTES:
        raise ValueError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(f"not an HTTP/1.x response: {lines[0][:40]!r}")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"content-length {length} out of bounds")
        body = await reader.readexactly(length)
    else:
        body = await reader.read(MAX_BODY_BYTES)
        keep = False
    return Response(status, headers, body), keep


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        if len(body) + size > MAX_BODY_BYTES:
            raise ValueError("chunked body too large")
        body += await reader.readexactly(size)
        await reader.readexactly(2)
