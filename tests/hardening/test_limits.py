"""Limits: body size (413), request-head deadline (slowloris), and their CORS headers."""

from __future__ import annotations

import socket
import threading
import time

import aiohttp

from .conftest import HardEdge, assert_exits_without_tracebacks, marker, raw_exchange, request_bytes

ALLOWED = ("Origin", "https://app.example.com")


def test_declared_body_over_the_limit_is_413_with_cors(hard_edge: HardEdge) -> None:
    mark = marker()
    request = request_bytes(
        "POST",
        "/api/upload",
        [ALLOWED, ("X-Test-Marker", mark), ("Content-Length", "70000")],
    )
    responses, _, _ = raw_exchange(hard_edge.port, request + b"x" * 70000, timeout=5)
    assert responses[0].status == 413
    assert responses[0].header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert mark not in hard_edge.flask_markers()


def test_chunked_body_over_the_limit_is_413_with_cors(hard_edge: HardEdge) -> None:
    chunk = b"y" * 8192
    body = (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 10 + b"0\r\n\r\n"
    request = request_bytes(
        "POST",
        "/api/upload",
        [ALLOWED, ("X-Test-Marker", marker()), ("Transfer-Encoding", "chunked")],
    )
    responses, _, _ = raw_exchange(hard_edge.port, request + body, timeout=5)
    assert responses[0].status == 413, responses[0].head
    assert responses[0].header("Access-Control-Allow-Origin") == "https://app.example.com"


def test_body_at_the_limit_is_forwarded(hard_edge: HardEdge) -> None:
    mark = marker()
    body = b"z" * 65536
    request = request_bytes("POST", "/api/upload", [ALLOWED, ("X-Test-Marker", mark)], body)
    responses, _, _ = raw_exchange(hard_edge.port, request, timeout=5)
    assert responses[0].status == 200
    assert b'"received":65536' in responses[0].body.replace(b" ", b"")


def test_client_header_deadline_closes_a_stalled_head(hard_edge: HardEdge) -> None:
    """client_header: 2 — a head still incomplete after it is answered 408 and closed."""
    started = time.monotonic()
    responses, closed, _ = raw_exchange(
        hard_edge.port, b"GET /public/status HTTP/1.1\r\nHost: x\r\nX-A: 1", timeout=6, expect=0
    )
    elapsed = time.monotonic() - started
    assert closed
    assert responses and responses[0].status == 408
    assert 1.5 <= elapsed < 4.5
    # a connection that never sends a byte is closed as well
    with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=6) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < 4.5


def test_keepalive_idle_connection_is_not_cut_by_the_head_deadline(hard_edge: HardEdge) -> None:
    """After a response, the idle keep-alive connection lives longer than client_header."""
    with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=6) as sock:
        sock.sendall(request_bytes("GET", "/public/status"))
        time.sleep(0.3)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        time.sleep(2.6)  # past client_header (2 s), within keepalive (10 s)
        sock.sendall(request_bytes("GET", "/public/status"))
        time.sleep(0.3)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")


async def test_slowloris_does_not_stop_a_normal_client(hard_edge: HardEdge) -> None:
    """30 connections dribble a head byte by byte; a normal client is served meanwhile,
    and every dribbler is cut off by the client_header deadline."""
    stop = threading.Event()
    closed_after: list[float] = []
    lock = threading.Lock()

    def dribble() -> None:
        head = b"GET /api/items HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500
        with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=10) as sock:
            started = time.monotonic()
            try:
                for byte in head:
                    if stop.is_set():
                        return
                    sock.sendall(bytes([byte]))
                    time.sleep(0.05)
            except OSError:
                pass
            sock.settimeout(5)
            try:
                while sock.recv(4096):
                    pass
            except OSError:
                pass
            with lock:
                closed_after.append(time.monotonic() - started)

    threads = [threading.Thread(target=dribble, daemon=True) for _ in range(30)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    latencies = []
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            started = time.monotonic()
            async with session.get(
                f"{hard_edge.edge.url}/api/items", headers={"Origin": ALLOWED[1]}
            ) as response:
                assert response.status == 200
                assert response.headers["Access-Control-Allow-Origin"] == ALLOWED[1]
            latencies.append(time.monotonic() - started)
    for thread in threads:
        thread.join(8)
    stop.set()
    assert max(latencies) < 1.0, latencies
    assert len(closed_after) == 30
    assert all(1.5 <= t < 4.5 for t in closed_after), closed_after


def test_no_tracebacks_on_stderr(own_hard_edge: HardEdge) -> None:
    """Bodies over and at the limit, and heads that stall, sent to an edge of this test's
    own, are answered as above, and not one leaves a traceback on its stderr."""
    test_declared_body_over_the_limit_is_413_with_cors(own_hard_edge)
    test_chunked_body_over_the_limit_is_413_with_cors(own_hard_edge)
    test_body_at_the_limit_is_forwarded(own_hard_edge)
    test_client_header_deadline_closes_a_stalled_head(own_hard_edge)
    assert_exits_without_tracebacks(own_hard_edge.edge)
