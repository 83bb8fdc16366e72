"""A scripted accrual system for poller tests: answers what the test says and records
every request (time, order number), so a test can check when requests came.

It stands in for the external system only; gophermart's own code runs for real.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeAccrual", "processed", "status", "too_many", "unknown", "fail"]

Reply = tuple[int, dict[str, str], bytes]


def processed(number: str, accrual: str | None = None) -> Reply:
    body = f'{{"order":"{number}","status":"PROCESSED"'
    body += f',"accrual":{accrual}}}' if accrual is not None else "}"
    return 200, {"Content-Type": "application/json"}, body.encode()


def status(number: str, value: str) -> Reply:
    return (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"order": number, "status": value}).encode(),
    )


def too_many(retry_after: int) -> Reply:
    return (
        429,
        {"Content-Type": "text/plain", "Retry-After": str(retry_after)},
        b"No more than N requests per minute allowed",
    )


def unknown() -> Reply:
    return 204, {}, b""


def fail() -> Reply:
    return 500, {"Content-Type": "text/plain"}, b"internal error"


class FakeAccrual:
    """`with FakeAccrual(script) as fake:` serves on fake.url until the block ends.

    Args:
        script: (order number, index of this request for that number) -> reply.
    """

    def __init__(self, script: Callable[[str, int], Reply], delay_s: float = 0.0):
        self.script = script
        self.delay_s = delay_s
        self.requests: list[tuple[float, str]] = []  # (time.monotonic(), number)
        self.in_flight: dict[str, int] = {}
        self.overlaps = 0  # a number asked while a request for it was in flight
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                number = self.path.rsplit("/", 1)[-1]
                with fake._lock:
                    index = sum(1 for _, n in fake.requests if n == number)
                    fake.requests.append((time.monotonic(), number))
                    fake.in_flight[number] = fake.in_flight.get(number, 0) + 1
                    fake.overlaps += fake.in_flight[number] > 1
                try:
                    if fake.delay_s:
                        time.sleep(fake.delay_s)
                    code, headers, body = fake.script(number, index)
                finally:
                    with fake._lock:
                        fake.in_flight[number] -= 1
                self.send_response(code)
                for name, value in headers.items():
                    self.send_header(name, value)
                if code != 204:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if code != 204:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def count(self, number: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, n in self.requests if number is None or n == number)

    def times(self) -> list[float]:
        with self._lock:
            return [t for t, _ in self.requests]

    def __enter__(self) -> FakeAccrual:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
