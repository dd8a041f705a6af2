"""Slow readers and trickling uploads cannot hold upstream workers (issue 10, defect 6).

The upstream is the real Flask app under a sync gunicorn with ONE worker: whatever
holds that worker holds the whole site. A client that starts a large download and
never reads is cut off after ``timeouts.client_send``; a chunked upload trickling a
byte at a time (each read well within ``client_body``) is cut off once it falls behind
``client_body`` + received / ``client_body_min_rate``. Then a normal request is served.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support import Edge, EdgeFactory, Upstream, start_upstream

from .conftest import assert_no_tracebacks, parse_responses, request_bytes

POLICY = """
timeouts: {read: 60, client_body: 2, client_body_min_rate: 100, client_send: 2}
routes:
  - path: /api/**
    origins: [https://app.example.com]
    methods: [GET, POST]
"""
ORIGIN = ("Origin", "https://app.example.com")


@pytest.fixture(scope="module")
def sync_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_upstream(
        tmp_path_factory.mktemp("sync-upstream"), workers=1, worker_class="sync", threads=1
    )
    yield server
    server.stop()


@pytest.fixture
def edge(tmp_path_factory: pytest.TempPathFactory, sync_upstream: Upstream) -> Iterator[Edge]:
    factory = EdgeFactory(tmp_path_factory.mktemp("slow-edge"), sync_upstream)
    edge = factory(POLICY)
    yield edge
    try:
        assert_no_tracebacks(edge)
    finally:
        factory.close()


def _ping(edge: Edge) -> int | None:
    """A normal request; its status (None if it got no answer within the safety net)."""
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        sock.sendall(request_bytes("GET", "/api/ping", [ORIGIN]))
        received = b""
        try:
            while not any(r.complete for r in parse_responses(received)):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
        except TimeoutError:
            return None
    responses = parse_responses(received)
    return responses[0].status if responses else None


def test_client_that_never_reads_a_download_is_cut_off(edge: Edge) -> None:
    process = psutil.Process(edge.process.pid)
    baseline = process.memory_info().rss
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(30)
        sock.connect(("127.0.0.1", edge.port))
        sock.sendall(request_bytes("GET", "/api/download?mb=512", [ORIGIN]))
        # ... and never reads. The edge gives up on it:
        edge.stderr.wait_for(r"client stopped reading its response", timeout=30)
        growth = process.memory_info().rss - baseline
        print(f"never-read download: edge RSS grew {growth / 1e6:.1f} MB")
        assert growth < 64 * 1024 * 1024  # flow control: the edge stopped reading too
        # The one gunicorn worker is free again while this client still hangs on.
        assert _ping(edge) == 200
    assert not [line for line in edge.stderr.lines if " ERROR " in line]


def test_trickling_chunked_upload_is_cut_off(edge: Edge) -> None:
    answer: list[bytes] = []
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as sock:
        sock.sendall(
            request_bytes("POST", "/api/upload", [ORIGIN, ("Transfer-Encoding", "chunked")])
        )

        def read() -> None:
            try:
                answer.append(sock.recv(65536))
            except OSError:
                answer.append(b"")

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        # One byte a second: every read is well within client_body (2 s), so only a
        # bound on the whole body can stop it. 60 s is the safety net, not the bound.
        while reader.is_alive() and time.monotonic() - started < 60:
            try:
                sock.sendall(b"1\r\nx\r\n")
            except OSError:
                break
            reader.join(1.0)
        reader.join(5)
        responses = parse_responses(answer[0] if answer else b"")
        assert responses and responses[0].status == 408, answer
        # The bound: client_body (2 s) + ~10 bytes / client_body_min_rate (100/s).
        assert time.monotonic() - started < 30
        assert _ping(edge) == 200
    assert not [line for line in edge.stderr.lines if " ERROR " in line]
