"""Edge answers respect flow control (issue 10, defect 1).

A client that pipelines requests the edge answers itself (preflights, refused
origins, bad paths) and never reads must not make the proxy buffer the answers:
once the client's socket is full the proxy stops reading from it, exactly as it
does for forwarded responses. The proxy's resident memory is measured (psutil,
the real process) while a raw socket pipelines without reading, and a second,
well-behaved client must be served meanwhile.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support import Edge, EdgeFactory

from .conftest import assert_no_tracebacks, raw_exchange, request_bytes

# A long allow-header list makes each 204 big (~2.5 KB for a ~90-byte request): a
# proxy that buffers what it cannot send grows fast, so the bound below is met by
# design, never by luck.
_HEADERS = [f"X-Long-Allowed-Header-Name-{n:03d}" for n in range(90)]
POLICY = f"""
timeouts: {{client_header: 30, keepalive: 120}}
routes:
  - path: /api/**
    origins: [https://app.example.com]
    methods: [GET, POST, PUT]
    allow_headers: [{", ".join(_HEADERS)}]
"""
BOUND = 30 * 1024 * 1024  # resident growth allowed while one client floods
SEND_CAP = 160 * 1024 * 1024  # never pipeline more than this (the proxy stopped long before)
STALL = 2.0  # seconds without send progress: the proxy stopped reading

FLOODS = {
    "preflight 204": b"OPTIONS /api/x HTTP/1.1\r\nHost: e\r\nOrigin: https://app.example.com\r\n"
    b"Access-Control-Request-Method: PUT\r\n\r\n",
    "refused preflight 403": b"OPTIONS /api/x HTTP/1.1\r\nHost: e\r\nOrigin: https://e.test\r\n"
    b"Access-Control-Request-Method: PUT\r\n\r\n",
    "blocked 403": b"GET /api/x HTTP/1.1\r\nHost: e\r\nOrigin: https://e.test\r\n\r\n",
    "bad path 400": b"GET /api/%2e%2e/x HTTP/1.1\r\nHost: e\r\n\r\n",
    "HTTP/1.0 keep-alive 403": b"GET /api/x HTTP/1.0\r\nConnection: keep-alive\r\n"
    b"Origin: https://e.test\r\n\r\n",
}


@pytest.fixture(scope="module", params=["one process", "--workers 2"])
def flood_edge(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream: object
) -> Iterator[Edge]:
    factory = EdgeFactory(tmp_path_factory.mktemp("flood-edge"), upstream)  # type: ignore[arg-type]
    fleet = request.param != "one process"
    edge = factory(POLICY, *(["--workers", "2"] if fleet else []))
    if fleet:
        for index in (0, 1):  # both workers serve before the flood starts
            edge.stderr.wait_for(rf"worker {index} .*serving on the parent's listener", 20)
    yield edge
    try:
        assert_no_tracebacks(edge)
    finally:
        factory.close()


def _rss(process: psutil.Process) -> int:
    # The serving process and any workers it started.
    processes = [process, *process.children(recursive=True)]
    return sum(int(p.memory_info().rss) for p in processes)


def _served(port: int) -> bool:
    """A well-behaved client on its own connection: a preflight and a forwarded GET."""
    preflight = request_bytes(
        "OPTIONS",
        "/api/x",
        [("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "PUT")],
    )
    forwarded = request_bytes("GET", "/public/status", [("Connection", "close")])
    responses, _, _ = raw_exchange(port, preflight + forwarded, expect=2, timeout=20)
    return [r.status for r in responses] == [204, 200]


def _flood(port: int, request: bytes, process: psutil.Process, base: int) -> tuple[int, int]:
    """Pipeline ``request`` without ever reading. Returns (bytes sent, peak RSS growth).

    Stops when the proxy stopped reading (no send progress for ``STALL`` seconds),
    when the growth passed ``BOUND`` (the test fails then: no need to go on), or at
    ``SEND_CAP``.
    """
    batch = request * max(1, 65536 // len(request))
    sent = peak = 0
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        last_progress = time.monotonic()
        view = memoryview(batch)
        offset = 0
        while sent < SEND_CAP and peak <= BOUND:
            try:
                count = sock.send(view[offset:])
            except BlockingIOError:
                if time.monotonic() - last_progress > STALL:
                    break
                time.sleep(0.02)
                peak = max(peak, _rss(process) - base)
                continue
            sent += count
            offset = (offset + count) % len(batch)
            last_progress = time.monotonic()
            if sent % (1 << 20) < count:
                peak = max(peak, _rss(process) - base)
        peak = max(peak, _rss(process) - base)
        # While this connection is stuck, others are served.
        assert _served(port), "a well-behaved client was not served during the flood"
        peak = max(peak, _rss(process) - base)
    return sent, peak


@pytest.mark.parametrize("kind", list(FLOODS))
def test_pipelining_without_reading_keeps_memory_bounded(flood_edge: Edge, kind: str) -> None:
    process = psutil.Process(flood_edge.process.pid)
    request = FLOODS[kind]
    # Warm up on a reading connection: allocator arenas, verdict cache, first answers.
    responses, _, _ = raw_exchange(flood_edge.port, request * 200, expect=200, timeout=20)
    assert len(responses) == 200 and responses[0].status in (204, 400, 403), responses[:1]
    assert _served(flood_edge.port)
    base = _rss(process)
    sent, peak = _flood(flood_edge.port, request, process, base)
    answers = sent // len(request)
    print(f"{kind}: {answers} pipelined ({sent / 2**20:.1f} MiB), RSS +{peak / 2**20:.1f} MiB")
    assert peak <= BOUND, (
        f"{kind}: RSS grew {peak / 2**20:.0f} MiB while a client pipelined "
        f"{answers} requests ({sent / 2**20:.0f} MiB) without reading"
    )
    assert sent < SEND_CAP, f"{kind}: the proxy never stopped reading the flooding client"
    # The proxy is still whole afterwards.
    assert _served(flood_edge.port)


def test_a_client_that_never_reads_its_edge_answers_is_cut_off(edge_factory: EdgeFactory) -> None:
    """Flow control stops the reading; ``timeouts.client_send`` then frees the connection
    (and the socket buffers it pins) instead of holding it for ever."""
    edge = edge_factory(POLICY.replace("keepalive: 120}", "keepalive: 120, client_send: 2}"))
    request = FLOODS["preflight 204"]
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", edge.port))
        sock.setblocking(False)
        batch, sent = request * 500, 0
        deadline = time.monotonic() + 60  # safety net: flow control stops us long before
        while time.monotonic() < deadline:
            try:
                sent += sock.send(batch)
            except BlockingIOError:
                break  # the edge stopped reading
        assert sent < SEND_CAP
        edge.stderr.wait_for(r"read nothing for 2 s while answers waited", 30)
        sock.settimeout(30)
        closed = False
        try:
            while sock.recv(1 << 16):
                pass
            closed = True  # EOF
        except ConnectionResetError:
            closed = True
        assert closed
    assert _served(edge.port)
    assert_no_tracebacks(edge)
