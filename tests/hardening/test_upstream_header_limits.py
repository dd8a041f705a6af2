"""Large upstream response headers (issue 10, defect 12).

A legal 9 KB ``Content-Security-Policy`` passes by default; the line and head limits
are ``limits.max_upstream_header_line`` and ``limits.max_upstream_header_bytes``;
past them the client gets a 502 and the log says which limit, not an exception name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import Edge, EdgeFactory

from .conftest import assert_no_tracebacks, raw_exchange, request_bytes
from .faultserver import FaultServer

ROUTES = """
routes:
  - path: /**
    origins: [https://app.example.com]
"""
ORIGIN = ("Origin", "https://app.example.com")


@pytest.fixture
def fault_edges(edge_factory: EdgeFactory, fault: FaultServer) -> Iterator[EdgeFactory]:
    yield edge_factory
    for edge in edge_factory.started:
        assert_no_tracebacks(edge)


def _csp(edge: Edge, size: int) -> tuple[int | None, str | None]:
    request = request_bytes("GET", f"/long-header?n={size}", [ORIGIN])
    responses, _, _ = raw_exchange(edge.port, request, timeout=10)
    assert responses, "no answer"
    return responses[0].status, responses[0].header("Content-Security-Policy")


def test_a_9kb_content_security_policy_passes_by_default(
    fault_edges: EdgeFactory, fault: FaultServer
) -> None:
    edge = fault_edges(ROUTES, upstream_url=fault.url)
    for size in (9 * 1024, 16000):
        status, csp = _csp(edge, size)
        assert status == 200, size
        assert csp is not None and len(csp) == size and csp.startswith("default-src 'self'")


def test_a_header_line_past_the_limit_is_502_and_logged_with_the_limit(
    fault_edges: EdgeFactory, fault: FaultServer
) -> None:
    edge = fault_edges(ROUTES, upstream_url=fault.url)
    status, _ = _csp(edge, 20000)
    assert status == 502
    line = edge.stderr.wait_for(r"long-header.*answered 502").string
    assert "a response header line over 16384 bytes (limits.max_upstream_header_line)" in line
    assert "ClientResponseError" not in line, line
    # The edge is still whole: the next request on a fresh connection passes.
    assert _csp(edge, 100)[0] == 200


def test_the_line_limit_is_configurable(fault_edges: EdgeFactory, fault: FaultServer) -> None:
    edge = fault_edges(
        "limits: {max_upstream_header_line: 40000}\n" + ROUTES, upstream_url=fault.url
    )
    status, csp = _csp(edge, 30000)
    assert status == 200 and csp is not None and len(csp) == 30000
    assert _csp(edge, 45000)[0] == 502


def test_the_head_limit_is_configurable_and_logged(
    fault_edges: EdgeFactory, fault: FaultServer
) -> None:
    edge = fault_edges(
        "limits: {max_upstream_header_bytes: 4096}\n" + ROUTES, upstream_url=fault.url
    )
    assert _csp(edge, 3000)[0] == 200
    status, _ = _csp(edge, 5000)  # one line under the line limit, the head over 4096
    assert status == 502
    line = edge.stderr.wait_for(r"long-header.*answered 502").string
    assert "a response head over 4096 bytes (limits.max_upstream_header_bytes)" in line, line
