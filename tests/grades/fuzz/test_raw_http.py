"""Raw HTTP that requests will not send: malformed request lines, headers, chunking,
pipelining, clients that vanish mid-body.
"""

from __future__ import annotations

import json
import re
import socket
import string
import time
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.grades.fuzz.oracle import (
    AUTH_HEADER,
    TIMEOUT_S,
    fuzz_settings,
)

# --- raw HTTP: what requests will not send ----------------------------------------------


def raw_exchange(port: int, data: bytes, timeout_s: float = TIMEOUT_S) -> bytes:
    """Send bytes, return whatever comes back until the response is whole or the peer
    closes ("" if it closed without a word)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if sep and match and len(body) >= int(match.group(1)):
                break
        return out


def parse_raw(out: bytes) -> tuple[int | None, dict, bytes]:
    """(status, headers, body) of the final response; (None, {}, b"") for no answer."""
    while out.startswith(b"HTTP/1.1 100 "):  # an interim answer to Expect: 100-continue
        out = out.partition(b"\r\n\r\n")[2]
    if not out:
        return None, {}, b""
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode("latin-1")
    return status, headers, body


def request_bytes(
    method: str,
    path: str,
    headers: list[tuple[str, str]],
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {path} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


SENTINEL_BODY = b'{"user_id": "raw-sentinel", "spp": 1}'
OK_HEADERS = [("Authorization", AUTH_HEADER), ("Content-Type", "application/json")]


def _chunked(*pieces: bytes, last=b"0\r\n\r\n") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + last


RAW_REQUESTS = {
    # oversized and numerous headers: refused or served, never a 5xx
    "100 KB header": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("X-Big", "a" * 100_000), ("Content-Length", str(len(SENTINEL_BODY)))],
            SENTINEL_BODY,
        ),
    ),
    "100 KB Authorization": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            [
                ("Authorization", "Basic " + "QUFB" * 25_000),
                ("Content-Length", str(len(SENTINEL_BODY))),
            ],
            SENTINEL_BODY,
        ),
    ),
    "100 KB Content-Type": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            [
                ("Authorization", AUTH_HEADER),
                ("Content-Type", "application/json;" + "x" * 100_000),
                ("Content-Length", str(len(SENTINEL_BODY))),
            ],
            SENTINEL_BODY,
        ),
    ),
    "1 MB header": ("getter", request_bytes("GET", "/healthz", [("X-Big", "c" * 1_000_000)])),
    "64 KB header name": ("getter", request_bytes("GET", "/healthz", [("X" * 65_536, "1")])),
    "2000 headers": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS
            + [(f"X-H{i}", "v") for i in range(2000)]
            + [("Content-Length", str(len(SENTINEL_BODY)))],
            SENTINEL_BODY,
        ),
    ),
    "100 KB header on the getter": (
        "getter",
        request_bytes("GET", "/get?user_id=raw-sentinel", [("X-Big", "b" * 100_000)]),
    ),
    "100 KB URL": ("getter", request_bytes("GET", "/get?user_id=" + "a" * 100_000, [])),
    "100 KB URL on the setter": (
        "setter",
        request_bytes(
            "POST", "/set?" + "a" * 100_000, OK_HEADERS + [("Content-Length", "2")], b"{}"
        ),
    ),
    # body framing
    "chunked, bad size": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "chunked")],
            b"zz\r\n" + SENTINEL_BODY + b"\r\n0\r\n\r\n",
        ),
    ),
    "chunked, over the limit": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "chunked")],
            _chunked(b" " * 3000, b" " * 3000, SENTINEL_BODY),
        ),
    ),
    "chunked, with Content-Length": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
            _chunked(SENTINEL_BODY),
        ),
    ),
    "chunked, with a trailer": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "chunked")],
            _chunked(b"[", last=b"0\r\nX-T: 1\r\n\r\n"),
        ),
    ),
    "chunked, huge size": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "chunked")],
            b"ffffffffffffffff\r\n" + b" " * 5000,
        ),
    ),
    "chunked, size over 64 bits": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "chunked")],
            b"1" + b"0" * 16 + b"\r\n" + b" " * 100,
        ),
    ),
    "transfer-encoding gzip": (
        "setter",
        request_bytes(
            "POST",
            "/set",
            OK_HEADERS + [("Transfer-Encoding", "gzip, chunked")],
            _chunked(SENTINEL_BODY),
        ),
    ),
    "Content-Length -1": (
        "setter",
        request_bytes("POST", "/set", OK_HEADERS + [("Content-Length", "-1")], SENTINEL_BODY),
    ),
    "Content-Length 10**30": (
        "setter",
        request_bytes(
            "POST", "/set", OK_HEADERS + [("Content-Length", str(10**30))], SENTINEL_BODY
        ),
    ),
    "Content-Length 10**6, short body": (
        "setter",
        request_bytes("POST", "/set", OK_HEADERS + [("Content-Length", str(10**6))], b"[" * 5000),
    ),
    "Content-Length twice": (
        "setter",
        request_bytes(
            "POST", "/set", OK_HEADERS + [("Content-Length", "2"), ("Content-Length", "3")], b"{}"
        ),
    ),
    "Content-Length abc": (
        "setter",
        request_bytes("POST", "/set", OK_HEADERS + [("Content-Length", "abc")], SENTINEL_BODY),
    ),
    # request line and header syntax
    "HTTP/1.0": (
        "setter",
        request_bytes(
            "POST", "/set", OK_HEADERS + [("Content-Length", "2")], b"{}", version="HTTP/1.0"
        ),
    ),
    "HTTP/2.0 text": ("setter", request_bytes("POST", "/set", OK_HEADERS, version="HTTP/2.0")),
    "HTTP/0.9 with headers": ("getter", request_bytes("GET", "/healthz", [], version="HTTP/0.9")),
    "HTTP/1.2": ("getter", request_bytes("GET", "/healthz", [], version="HTTP/1.2")),
    "HTTP/9.9": ("getter", request_bytes("GET", "/healthz", [], version="HTTP/9.9")),
    "unknown method": ("setter", request_bytes("BREW", "/set", OK_HEADERS)),
    "NUL in path": ("setter", request_bytes("POST", "/se\x00t", OK_HEADERS)),
    "space in path": ("getter", request_bytes("GET", "/get?user_id=a b", [])),
    "absolute URI": ("getter", request_bytes("GET", "http://x/get?user_id=raw-sentinel", [])),
    "asterisk": ("getter", request_bytes("OPTIONS", "*", [])),
    "raw bytes in path": ("getter", b"GET /\xff\xfe/get HTTP/1.1\r\nHost: x\r\n\r\n"),
    "raw UTF-8 in path": ("setter", "POST /sét HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
    "header name with a space": ("setter", b"POST /set HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n"),
    "raw bytes in query": ("getter", b"GET /get?user_id=\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n"),
    "raw UTF-8 in query": ("getter", "GET /get?user_id=é HTTP/1.1\r\nHost: x\r\n\r\n".encode()),
    "raw bytes in Content-Type": (
        "setter",
        b"POST /set HTTP/1.1\r\nHost: x\r\nAuthorization: "
        + AUTH_HEADER.encode()
        + b"\r\nContent-Type: \xff\xfe\r\n"
        b"Content-Length: 2\r\n\r\n{}",
    ),
    "raw bytes in Authorization": (
        "setter",
        b"POST /set HTTP/1.1\r\nHost: x\r\nAuthorization: "
        b"Basic \xff\xfe\r\nContent-Length: 2\r\n\r\n{}",
    ),
    "header without colon": ("setter", b"POST /set HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n"),
    "obsolete line folding": (
        "setter",
        request_bytes(
            "POST", "/set", OK_HEADERS + [("X-A", "1\r\n  folded"), ("Content-Length", "2")], b"{}"
        ),
    ),
    "LF only": ("getter", b"GET /healthz HTTP/1.1\nHost: x\n\n"),
    "TLS hello": ("setter", bytes.fromhex("16030100a5010000a10303") + b"\x00" * 160),
    "HTTP/2 preface": ("setter", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00" * 20),
    "garbage": ("getter", bytes(range(256))),
}


@pytest.mark.parametrize("name", list(RAW_REQUESTS))
def test_malformed_http_is_refused_and_changes_nothing(replica, name):
    port_name, data = RAW_REQUESTS[name]
    port = urlsplit(replica.set_url if port_name == "setter" else replica.get_base).port
    before = replica.record("raw-sentinel")
    status, headers, body = parse_raw(raw_exchange(port, data))
    # None: the server closed the connection without an answer, which is fine too
    assert status is None or status < 500, (status, headers, body[:300])
    if (
        status is not None
        and status >= 400
        and headers.get("content-type", "").startswith("text/plain")
    ):
        # the HTTP parser's own refusal, before the request reaches the app
        assert status == 400 and headers.get("connection") == "close", (status, headers)
    elif status is not None and status >= 400:
        assert set(json.loads(body)) == {"error"}, body
    after = replica.record("raw-sentinel")
    if status == 200 and port_name == "setter":
        assert after == {
            "user_id": "raw-sentinel",
            "postpaid_limit": 0,
            "spp": 1,
            "shipping_fee": 0,
            "return_fee": 0,
        }
    else:
        assert after == before
    assert replica.ready()


no_crlf = st.characters(min_codepoint=0x09, max_codepoint=0xFF, blacklist_characters="\n\r")
raw_header_names = st.sampled_from(
    [
        "Content-Type",
        "Authorization",
        "Accept",
        "Host",
        "User-Agent",
        "Cookie",
        "Expect",
        "Accept-Encoding",
        "Range",
        "Origin",
        "Upgrade",
        "TE",
        "Trailer",
        "X-Forwarded-For",
        "Forwarded",
        "Content-Encoding",
        "Keep-Alive",
    ]
) | st.text(no_crlf, min_size=1, max_size=20)
raw_header_values = st.sampled_from(
    [
        "application/json",
        AUTH_HEADER,
        "100-continue",
        "",
        "gzip",
        "websocket",
        "h2c",
        "bytes=0-1",
        "*/*",
    ]
) | st.text(no_crlf, max_size=60)


@st.composite
def raw_requests(draw):
    """One HTTP/1 request with consistent framing (Content-Length right, Connection: close);
    each of method, target, version, header lines and body is usually plausible and
    sometimes odd, so that one odd part at a time gets past the parser to the app."""

    def odd() -> bool:
        return draw(st.integers(0, 3)) == 0

    method = draw(
        st.text(string.ascii_uppercase + "-_!#", min_size=1, max_size=10)
        if odd()
        else st.sampled_from(
            ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE", "get", "M-SEARCH"]
        )
    )
    target = draw(
        st.text(st.characters(min_codepoint=0x21, max_codepoint=0xFF), max_size=40).map(
            lambda path: "/" + path
        )
        if odd()
        else st.sampled_from(
            [
                "/set",
                "/set/",
                "/get?user_id=raw-sentinel",
                "/get?user_id=%zz",
                "/get",
                "/healthz",
                "/readyz",
                "/openapi.json",
                "/",
                "*",
                "/set?a=%zz",
            ]
        )
    )
    version = draw(
        st.sampled_from(
            [
                "HTTP/0.9",
                "HTTP/2.0",
                "HTTP/2",
                "HTTP/3.0",
                "HTTP/1.2",
                "http/1.1",
                "HTTP/1.1 ",
                "HTTP/11",
                "HTTP/1.01",
                "HTTPS/1.1",
                "",
            ]
        )
        | st.from_regex(r"HTTP/[0-9]\.[0-9]", fullmatch=True)
        if odd()
        else st.sampled_from(["HTTP/1.1", "HTTP/1.0"])
    )
    headers = [("Host", "127.0.0.1")]
    if draw(st.booleans()):
        headers.append(("Authorization", AUTH_HEADER))
    if draw(st.booleans()):
        headers.append(("Content-Type", "application/json"))
    if odd():
        extra = draw(st.lists(st.tuples(raw_header_names, raw_header_values), max_size=6))
        headers += [
            (name, value)
            for name, value in extra
            if name.strip().lower() not in ("content-length", "transfer-encoding", "connection")
        ]
    body = draw(
        st.binary(max_size=300)
        if odd()
        else st.sampled_from([b"", SENTINEL_BODY, b"{", b'{"user_id": "raw-fuzz"}'])
    )
    head = f"{method} {target} {version}".rstrip() + "\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers)
    head += f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("latin-1") + body


def test_random_raw_requests_are_never_a_5xx(replica):
    """Found the HTTP/2.0 and HTTP/0.9 request-line 500s (see the regression test below)."""
    ports = {"setter": urlsplit(replica.set_url).port, "getter": urlsplit(replica.get_base).port}
    before = replica.backup_rows()
    written = set()

    @fuzz_settings(120)
    @given(st.sampled_from(sorted(ports)), raw_requests())
    def run(port_name, data):
        status, headers, body = parse_raw(raw_exchange(ports[port_name], data))
        assert status is None or status < 500, (data[:300], status, body[:300])
        if status is None or status < 400 or data.split(b" ", 1)[0] == b"HEAD":
            if status == 200 and port_name == "setter" and b"result" in body:
                answer = json.loads(body)
                if "result" in answer:  # not /openapi.json
                    written.add(answer["result"]["user_id"])
            return
        if headers.get("content-type", "").startswith("text/plain"):
            assert status == 400, (data[:300], status, body[:300])  # the HTTP parser's
        else:
            assert set(json.loads(body)) == {"error"}, (data[:300], status, body[:300])

    run()
    after = replica.backup_rows()
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    assert changed <= written, changed - written


@pytest.mark.parametrize("port_name", ["setter", "getter"])
@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/0.9"])
def test_regression_http_2_0_and_0_9_request_lines_are_400_not_500(replica, port_name, version):
    """Found by this file: uvicorn's parser passes these versions on as "2.0" and "0.9",
    which falcon refused by raising (500 Internal Server Error, a traceback per request)."""
    port = urlsplit(replica.set_url if port_name == "setter" else replica.get_base).port
    path = "/set" if port_name == "setter" else "/get?user_id=raw-sentinel"
    method = "POST" if port_name == "setter" else "GET"
    before = replica.record("raw-sentinel")
    status, headers, body = parse_raw(
        raw_exchange(
            port,
            request_bytes(
                method,
                path,
                OK_HEADERS + [("Content-Length", str(len(SENTINEL_BODY)))],
                SENTINEL_BODY,
                version=version,
            ),
        )
    )
    assert status == 400, (status, body)
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"error": f"{version}: unsupported HTTP version"}
    assert replica.record("raw-sentinel") == before


def test_pipelined_requests_are_all_answered_in_order(replica):
    """Valid and invalid requests in one write: each gets its own answer, none a 5xx."""
    bodies = [
        SENTINEL_BODY,
        b"{",
        b'{"user_id": "pipelined", "spp": 3}',
        b"[]" * 10,
        b'{"user_id": "x", "spp": 1.5}',
        SENTINEL_BODY,
    ]
    data = b"".join(
        request_bytes("POST", "/set", OK_HEADERS + [("Content-Length", str(len(body)))], body)
        for body in bodies
    )
    data += request_bytes("GET", "/set", [])
    port = urlsplit(replica.set_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + TIMEOUT_S
        while received.count(b"HTTP/1.1 ") < len(bodies) + 1 and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    statuses = [int(m) for m in re.findall(rb"HTTP/1.1 (\d{3}) ", received)]
    assert statuses == [200, 400, 200, 400, 400, 200, 405], received[-500:]
    assert replica.record("pipelined")["spp"] == 3


def test_a_client_that_vanishes_mid_body_leaves_nothing_behind(replica):
    """Content-Length promises more than is sent, then the client closes."""
    before = replica.backup_rows()
    port = urlsplit(replica.set_url).port
    for sent in (0, 10, len(SENTINEL_BODY) - 1):
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
            sock.sendall(
                request_bytes(
                    "POST",
                    "/set",
                    OK_HEADERS + [("Content-Length", str(len(SENTINEL_BODY)))],
                    SENTINEL_BODY[:sent],
                )
            )
    assert replica.set("after-vanish", spp=1).status_code == 200
    after = replica.backup_rows()
    del after["after-vanish"]
    assert after == before
