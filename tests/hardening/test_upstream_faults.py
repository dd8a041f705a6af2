"""Upstream faults: refused, silent, reset mid-response, restarted; big bodies both ways."""

from __future__ import annotations

import hashlib
import os
import socket
import struct
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support import Edge, EdgeFactory

from .conftest import (
    assert_exits_without_tracebacks,
    assert_no_tracebacks,
    raw_exchange,
    request_bytes,
    serve_faults,
    wait_for,
)
from .faultserver import FaultServer

FAULT_POLICY = """
timeouts: {connect: 1, read: 1, client_header: 2, client_body: 1, keepalive: 10}
limits: {max_body_bytes: 16777216, max_upstream_connections: 4}
routes:
  - path: /**
    origins: [https://app.example.com]
    methods: [GET, POST, PUT, DELETE]
    supports_credentials: true
"""
ORIGIN = {"Origin": "https://app.example.com"}


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    yield from serve_faults()  # one per test: the tests change its state and count on it


@pytest.fixture
def fault_edge(edge_factory: EdgeFactory, fault: FaultServer) -> Iterator[Edge]:
    edge = edge_factory(FAULT_POLICY, upstream_url=fault.url)
    yield edge
    assert_no_tracebacks_except_aborts(edge)


def assert_no_tracebacks_except_aborts(edge: Edge) -> None:
    assert_no_tracebacks(edge)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _assert_cors(response: aiohttp.ClientResponse) -> None:
    assert response.headers.get("Access-Control-Allow-Origin") == "https://app.example.com"
    assert response.headers.get("Access-Control-Allow-Credentials") == "true"


async def test_refused_connection_is_502_with_cors(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(FAULT_POLICY, upstream_url=f"http://127.0.0.1:{_closed_port()}")
    async with aiohttp.ClientSession() as session:
        for method in ("GET", "POST"):
            async with session.request(method, edge.url + "/ok", headers=ORIGIN) as response:
                assert response.status == 502
                _assert_cors(response)
    assert_no_tracebacks(edge)


async def test_silent_upstream_is_504_with_cors(fault_edge: Edge) -> None:
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.get(fault_edge.url + "/hang", headers=ORIGIN) as response:
            assert response.status == 504
            _assert_cors(response)
        # The read timeout (1 s) answered, not some other timer: a bound with room for a
        # loaded box (the upstream would hang for an hour).
        assert time.monotonic() - started < 10


async def test_upstream_closing_without_answer_is_502(fault_edge: Edge) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fault_edge.url + "/close", headers=ORIGIN, data=b"x") as response,
    ):
        assert response.status == 502
        _assert_cors(response)


@pytest.mark.parametrize("path", ["/reset", "/reset-chunked"])
def test_reset_mid_response_is_an_aborted_response(fault_edge: Edge, path: str) -> None:
    request = request_bytes("GET", path, [("Origin", "https://app.example.com")])
    responses, closed, _ = raw_exchange(fault_edge.port, request, expect=0, timeout=5)
    assert closed
    assert responses and responses[0].status == 200  # the head was already relayed
    assert not responses[0].complete, "a reset upstream must never look like a success"


async def test_reset_mid_response_fails_in_a_client(fault_edge: Edge) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/reset", "/reset-chunked"):
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.get(fault_edge.url + path, headers=ORIGIN) as response:
                    await response.read()


async def test_ten_megabytes_both_ways_byte_identical(fault_edge: Edge) -> None:
    body = os.urandom(10 * 1024 * 1024)
    digest = hashlib.sha256(body).hexdigest()
    async with aiohttp.ClientSession() as session:
        async with session.post(fault_edge.url + "/echo-body", data=body) as response:
            assert response.status == 200
            echoed = await response.read()
        assert len(echoed) == len(body) and echoed == body

        async def chunks() -> object:
            for start in range(0, len(body), 300_000):
                yield body[start : start + 300_000]

        async with session.post(fault_edge.url + "/ok", data=chunks()) as response:
            result = await response.json()
        assert result["length"] == len(body) and result["sha256"] == digest

        size = 10 * 1024 * 1024
        async with session.get(fault_edge.url + f"/big?n={size}", headers=ORIGIN) as response:
            downloaded = await response.read()
            _assert_cors(response)
        expected = (bytes(range(256)) * (size // 256 + 1))[:size]
        assert downloaded == expected


async def test_restarted_upstream_retries_only_idempotent_methods(
    fault_edge: Edge, fault: FaultServer
) -> None:
    """A pooled connection found dead is retried for GET/PUT/DELETE, never for POST."""
    async with aiohttp.ClientSession() as session:
        async with session.get(fault_edge.url + "/ok", headers=ORIGIN) as response:
            assert response.status == 200
        fault.drop_reused = True
        for method in ("GET", "PUT", "DELETE"):
            connections = fault.stats.connections
            async with session.request(method, fault_edge.url + "/ok", headers=ORIGIN) as response:
                assert response.status == 200, method  # retried on a fresh connection
            assert fault.stats.connections == connections + 1
        served = len(fault.stats.requests)
        connections = fault.stats.connections
        async with session.post(
            fault_edge.url + "/ok", headers=ORIGIN, data=b"pay once"
        ) as response:
            assert response.status == 502
            _assert_cors(response)
        assert fault.stats.connections == connections, "a POST was retried"
        assert len(fault.stats.requests) == served


async def test_upstream_cors_headers_are_replaced(fault_edge: Edge) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(
            fault_edge.url + "/cors", headers={"Origin": "https://evil.com"}
        ) as response:
            assert response.status == 403
            assert "Access-Control-Allow-Origin" not in response.headers
        async with session.get(fault_edge.url + "/cors") as response:
            assert response.status == 200
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "Access-Control-Allow-Credentials" not in response.headers


async def test_max_upstream_connections_applies_back_pressure(
    fault_edge: Edge, fault: FaultServer
) -> None:
    import asyncio

    async with aiohttp.ClientSession() as session:

        async def one(i: int) -> int:
            headers = {**ORIGIN, "X-Test-Marker": f"bp-{i}"}
            async with session.get(fault_edge.url + "/slow?ms=150", headers=headers) as response:
                await response.read()
                return response.status

        started = time.monotonic()
        statuses = await asyncio.gather(*(one(i) for i in range(16)))
        elapsed = time.monotonic() - started
    assert statuses == [200] * 16
    assert fault.stats.max_open_connections <= 4
    assert elapsed >= 0.15 * 16 / 4 * 0.9  # they queued for the 4 connections
    assert sorted(m for _, _, m, _ in fault.stats.requests if m) == sorted(
        f"bp-{i}" for i in range(16)
    )


def test_client_body_timeout_is_408(fault_edge: Edge, fault: FaultServer) -> None:
    request = request_bytes(
        "POST",
        "/ok",
        [("Origin", "https://app.example.com"), ("Content-Length", "1000")],
    )
    started = time.monotonic()
    responses, _, _ = raw_exchange(fault_edge.port, [request + b"0123456789"], timeout=12)
    elapsed = time.monotonic() - started
    assert responses and responses[0].status == 408, responses
    assert responses[0].header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert responses[0].header("Connection") == "close"
    # client_body (1 s) fired, not keepalive (10 s): room for a loaded box, still below it.
    assert elapsed < 8
    assert fault.stats.requests == []  # the upstream never got a complete request


def test_client_gone_before_the_upstream_answers(fault_edge: Edge, fault: FaultServer) -> None:
    """A client that hangs up while the upstream is still working is no error of ours."""
    paths = ("/slow?ms=300", "/big?n=5000000")
    for path in paths:
        seen = len(fault.stats.requests)
        with socket.create_connection(("127.0.0.1", fault_edge.port)) as sock:
            sock.sendall(request_bytes("GET", path, [("Origin", "https://app.example.com")]))
            # Hang up (RST) once the upstream has the request: it is working on it now.
            assert wait_for(lambda seen=seen: len(fault.stats.requests) > seen, timeout=10)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def logged() -> bool:
        return {line.get("path") for line in fault_edge.access_log()} >= set(paths)

    # The edge is done with both once it logged them; then all its stderr is read.
    assert wait_for(logged, timeout=10), fault_edge.stdout.text()
    assert_exits_without_tracebacks(fault_edge)
