"""Idle and slowloris connections must not starve a well-behaved client.

The figure that matters (the client's p99 under attack) is printed for the
record; the test asserts only that every request was answered in time.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

IDLE_CONNECTIONS = 1000
SLOWLORIS_CONNECTIONS = 100
PROBES = 200


def _open(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def test_idle_and_slowloris_connections_do_not_starve_a_client(cluster):
    replica = cluster.replica(1, bus=None)
    assert replica.set("probe", spp=1).status_code == 200
    port = replica.getter_port
    idle = [_open(port) for _ in range(IDLE_CONNECTIONS)]
    slow = [_open(port) for _ in range(SLOWLORIS_CONNECTIONS)]
    stop = threading.Event()

    def trickle():  # a header byte per connection every 100 ms, never finishing
        for sock in slow:
            sock.send(b"GET /get?user_id=probe HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(0.1):
            for sock in slow:
                try:
                    sock.send(b"X-a: b\r\n")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    latencies = []
    try:
        session = requests.Session()
        for _ in range(PROBES):
            started = time.perf_counter()
            response = session.get(
                f"{replica.get_base}/get", params={"user_id": "probe"}, timeout=5
            )
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
    finally:
        stop.set()
        trickler.join(timeout=5)
        for sock in idle + slow:
            sock.close()
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"\nunder {IDLE_CONNECTIONS} idle + {SLOWLORIS_CONNECTIONS} slowloris connections: "
        f"p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms over {PROBES} gets"
    )
    assert replica.set("probe", spp=2).status_code == 200


@pytest.mark.parametrize("header_bytes", [40 * 1024, 1024 * 1024])
def test_an_oversized_header_is_refused_and_the_server_lives(cluster, header_bytes):
    replica = cluster.replica(1, bus=None)
    try:
        response = requests.get(
            f"{replica.get_base}/get",
            params={"user_id": "x"},
            headers={"X-Huge": "a" * header_bytes},
            timeout=10,
        )
        assert response.status_code == 431
        assert "headers" in response.json()["error"]
    except requests.ConnectionError:
        pass  # the server may close before the client finished sending: also a refusal
    assert requests.get(f"{replica.get_base}/healthz", timeout=5).status_code == 200


def test_an_endless_header_is_cut_off_with_bounded_memory(cluster):
    replica = cluster.replica(1, bus=None)
    workers = replica.workers()
    rss_before = sum(w.memory_info().rss for w in workers)
    sock = socket.create_connection(("127.0.0.1", replica.getter_port), timeout=5)
    try:
        sock.sendall(b"GET /get?user_id=x HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        sent, answer = 0, b""
        try:
            while sent < 8 * 1024 * 1024:
                sock.sendall(b"a" * 65536)
                sent += 65536
        except OSError:
            pass  # the server closed the connection: what we want
        try:
            answer = sock.recv(200)
        except OSError:
            pass
    finally:
        sock.close()
    assert sent < 8 * 1024 * 1024 or answer.startswith(b"HTTP/1.1 431")
    rss_after = sum(w.memory_info().rss for w in workers)
    assert rss_after - rss_before < 16 * 1024 * 1024
    assert requests.get(f"{replica.get_base}/healthz", timeout=5).status_code == 200
