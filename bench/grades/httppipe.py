"""Fast HTTP/1.1 prefill: many POST /set requests pipelined on one keep-alive socket.

Used to load the Go peer (which has no other way in) with the same rows our
replicas get over ZeroMQ. Responses must carry Content-Length (both servers'
small JSON answers do).
"""

from __future__ import annotations

import base64
import json
import socket
import time

from bench.grades.stack import AUTH, BenchError

_AUTH = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()


def _request(host: str, port: int, body: bytes) -> bytes:
    return (
        f"POST /set HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {_AUTH}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class _Responses:
    """Reads pipelined responses off a socket; counts statuses."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise BenchError("the server closed the connection during the prefill")
        self.buf += chunk

    def next_status(self) -> int:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "transfer-encoding":
                raise BenchError("pipelined prefill: chunked responses are not supported")
        while len(self.buf) < (length or 0):
            self._fill()
        self.buf = self.buf[length or 0 :]
        return status


def prefill(
    port: int, user_ids, host: str = "127.0.0.1", window: int = 500, timeout_s: float = 120.0
) -> dict:
    """POST /set a full record for every user id; returns counts, fails on any non-200."""
    started = time.perf_counter()
    ok = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.settimeout(10)
        responses = _Responses(sock)
        batch: list[bytes] = []

        def flush() -> None:
            nonlocal ok
            sock.sendall(b"".join(batch))
            for _ in batch:
                status = responses.next_status()
                if status != 200:
                    raise BenchError(f"prefill of :{port}: HTTP {status}")
                ok += 1
            batch.clear()
            if time.perf_counter() - started > timeout_s:
                raise BenchError(f"prefill of :{port} overran {timeout_s:.0f} s")

        for n, user_id in enumerate(user_ids):
            body = json.dumps(
                {
                    "user_id": str(user_id),
                    "postpaid_limit": n,
                    "spp": n % 97,
                    "shipping_fee": n % 13,
                    "return_fee": n % 7,
                }
            ).encode()
            batch.append(_request(host, port, body))
            if len(batch) >= window:
                flush()
        if batch:
            flush()
    elapsed = time.perf_counter() - started
    return {"rows": ok, "seconds": elapsed, "per_s": ok / elapsed}
