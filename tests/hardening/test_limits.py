"""Limits: body size (413), request-head deadline (slowloris), and their CORS headers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import aiohttp

from .conftest import (
    HardEdge,
    RawResponse,
    assert_exits_without_tracebacks,
    marker,
    parse_responses,
    raw_exchange,
    request_bytes,
)

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


# Bounds on when a deadline closed a connection: the deadline firing is the property, so
# the time is measured, with room for a loaded 2-core box. Under 8 s is still well before
# keepalive (10 s), the only other timer that could close it, so the head deadline did.
HEAD_DEADLINE_BOUNDS = (1.5, 8.0)


def _read_response(sock: socket.socket) -> RawResponse:
    """Read until one whole response arrived (no pause: the server's reply is the event)."""
    data = b""
    while not (done := [r for r in parse_responses(data) if r.complete]):
        chunk = sock.recv(65536)
        assert chunk, f"closed before a whole response: {data!r}"
        data += chunk
    return done[0]


def test_client_header_deadline_closes_a_stalled_head(hard_edge: HardEdge) -> None:
    """client_header: 2 — a head still incomplete after it is answered 408 and closed."""
    low, high = HEAD_DEADLINE_BOUNDS
    started = time.monotonic()
    responses, closed, _ = raw_exchange(
        hard_edge.port, b"GET /public/status HTTP/1.1\r\nHost: x\r\nX-A: 1", timeout=12, expect=0
    )
    elapsed = time.monotonic() - started
    assert closed
    assert responses and responses[0].status == 408
    assert low <= elapsed < high
    # a connection that never sends a byte is closed as well
    with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=12) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started < high


def test_keepalive_idle_connection_is_not_cut_by_the_head_deadline(hard_edge: HardEdge) -> None:
    """After a response, the idle keep-alive connection lives longer than client_header."""
    with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=12) as sock:
        sock.sendall(request_bytes("GET", "/public/status"))
        assert _read_response(sock).status == 200
        # Idle past client_header (2 s), within keepalive (10 s): this wait is the property.
        time.sleep(2.6)
        sock.sendall(request_bytes("GET", "/public/status"))
        assert _read_response(sock).status == 200


DRIBBLERS = 30


async def test_slowloris_does_not_stop_a_normal_client(hard_edge: HardEdge) -> None:
    """30 connections dribble a head byte by byte, reconnecting whenever they are cut off,
    so the attack lasts as long as the normal client needs: the client is served while it
    is on, and every dribbling connection is cut off by the client_header deadline."""
    stop = threading.Event()
    connected = threading.Barrier(DRIBBLERS + 1, timeout=30)
    cut_after: list[float] = []  # the server closed the dribbling connection
    not_cut: list[str] = []  # anything else ended it
    lock = threading.Lock()
    head = b"GET /api/items HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 500

    def dribble_once(first: bool) -> None:
        with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=12) as sock:
            started = time.monotonic()
            try:
                sock.sendall(head[:1])
                if first:
                    connected.wait()
                for byte in head[1:]:
                    if stop.is_set():
                        break  # stall mid-head: the deadline must still cut it off
                    sock.sendall(bytes([byte]))
                    time.sleep(0.05)
            except OSError:
                pass  # the server closed it while we were sending
            try:
                while sock.recv(4096):
                    pass
            except TimeoutError:
                with lock:
                    not_cut.append("still open after 12 s")
                return
            except OSError:
                pass  # reset: closed by the server as well
            with lock:
                cut_after.append(time.monotonic() - started)

    def dribble() -> None:
        dribble_once(first=True)
        while not stop.is_set():
            dribble_once(first=False)

    threads = [threading.Thread(target=dribble, daemon=True) for _ in range(DRIBBLERS)]
    for thread in threads:
        thread.start()
    await asyncio.to_thread(connected.wait)  # all 30 hold a connection mid-head
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(20):
                async with session.get(
                    f"{hard_edge.edge.url}/api/items", headers={"Origin": ALLOWED[1]}
                ) as response:
                    assert response.status == 200
                    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED[1]
                # the attack was still on when this answer came: no dribbler had given up
                assert not stop.is_set() and all(t.is_alive() for t in threads)
    finally:
        stop.set()
        for thread in threads:
            await asyncio.to_thread(thread.join, 30)
    assert not any(t.is_alive() for t in threads)
    assert not_cut == []
    assert len(cut_after) >= DRIBBLERS, cut_after
    low, high = HEAD_DEADLINE_BOUNDS
    assert all(low <= t < high for t in cut_after), cut_after


def test_no_tracebacks_on_stderr(own_hard_edge: HardEdge) -> None:
    """Bodies over and at the limit, and heads that stall, sent to an edge of this test's
    own, are answered as above, and not one leaves a traceback on its stderr."""
    test_declared_body_over_the_limit_is_413_with_cors(own_hard_edge)
    test_chunked_body_over_the_limit_is_413_with_cors(own_hard_edge)
    test_body_at_the_limit_is_forwarded(own_hard_edge)
    test_client_header_deadline_closes_a_stalled_head(own_hard_edge)
    assert_exits_without_tracebacks(own_hard_edge.edge)
