"""A user cancelling a download (or an upload) is not an upstream failure (issue 10, defect 13).

The edge used to log a cancelled download as "upstream broke off its response" at
ERROR and count it in ``cors_edge_upstream_errors_total``, so upstream-error alerts
fired on normal traffic. Real gunicorn Flask upstream, real edge; the counter is read
from the admin port's ``/metrics``.
"""

from __future__ import annotations

import socket
import time
import urllib.request

import pytest

from tests.support import Edge, EdgeFactory

from .conftest import assert_no_tracebacks, request_bytes

POLICY = """
timeouts: {client_body: 30}
routes:
  - path: /api/**
    origins: [https://app.example.com]
    methods: [GET, POST]
"""
OUTCOME = r"client (went away|broke off)|upstream .*(broke off|failed|closed)"


def _metrics(edge: Edge) -> str:
    with urllib.request.urlopen(f"{edge.admin_url}/metrics", timeout=10) as response:
        return str(response.read().decode())


def _upstream_error_samples(edge: Edge) -> list[str]:
    return [
        line
        for line in _metrics(edge).splitlines()
        if line.startswith("cors_edge_upstream_errors_total{")
    ]


def _error_lines(edge: Edge) -> list[str]:
    return [line for line in edge.stderr.lines if " ERROR " in line]


def test_cancelled_download_is_a_client_abort(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(POLICY)
    request = request_bytes("GET", "/api/download?mb=64", [("Origin", "https://app.example.com")])
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        sock.sendall(request)
        received = 0
        while received < 1024 * 1024:  # the download is under way
            chunk = sock.recv(65536)
            assert chunk, "the edge closed before the download started"
            received += len(chunk)
    # The user closed the tab.
    outcome = edge.stderr.wait_for(OUTCOME, timeout=30)
    assert outcome[0].startswith("client went away"), outcome.string
    assert _error_lines(edge) == []
    assert _upstream_error_samples(edge) == []
    assert_no_tracebacks(edge)


def test_cancelled_upload_is_a_client_abort(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(POLICY)
    head = request_bytes(
        "POST",
        "/api/upload",
        [("Origin", "https://app.example.com"), ("Transfer-Encoding", "chunked")],
    )
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        sock.sendall(head)
        for _ in range(20):
            sock.sendall(b"1000\r\n" + b"x" * 0x1000 + b"\r\n")
    outcome = edge.stderr.wait_for(OUTCOME, timeout=30)
    assert outcome[0].startswith("client broke off"), outcome.string
    assert _error_lines(edge) == []
    assert _upstream_error_samples(edge) == []
    assert_no_tracebacks(edge)


@pytest.mark.parametrize("target", ["/api/slow?seconds=1", "/api/download?mb=8"])
def test_cancelled_while_waiting_for_the_upstream_is_no_upstream_error(
    edge_factory: EdgeFactory, target: str
) -> None:
    """The user gives up before the answer starts (small or streamed): still not an
    upstream failure once the upstream does answer."""
    edge = edge_factory(POLICY)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as sock:
        sock.sendall(request_bytes("GET", target, [("Origin", "https://app.example.com")]))
    # The request is over when the access observer ran: /metrics counts it.
    deadline = time.monotonic() + 30
    while "cors_edge_requests_total{" not in _metrics(edge) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "cors_edge_requests_total{" in _metrics(edge)
    assert _error_lines(edge) == []
    assert _upstream_error_samples(edge) == []
    assert_no_tracebacks(edge)
