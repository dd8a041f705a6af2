"""Fixtures and raw-socket helpers for the hardening suites.

Hostile bytes go over plain sockets: HTTP client libraries refuse (or repair) most
of what an attacker would send. Every edge started here is checked afterwards for
tracebacks on its stderr: a hostile request must end in a clear 4xx or a closed
connection, never in an unhandled exception.
"""

from __future__ import annotations

import contextlib
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.hardening.faultserver import FaultServer
from tests.support import DROP, Edge, EdgeFactory, Upstream, extend_policy

# The base policy with other origins: exact, subdomain-wildcard and regex with
# credentials on /api/**; the wildcard route; an unenforced exact route; tight limits so
# the suites can reach them quickly.
HARDENING_POLICY = extend_policy(
    {
        "timeouts": {"connect": 1, "client_header": 2, "client_body": 2, "keepalive": 10},
        "limits": {
            "max_body_bytes": 65536,
            "max_header_bytes": 4096,
            "max_headers": 40,
            "max_upstream_connections": 50,
        },
        "defaults": {"max_age": DROP},
        "routes": [
            {
                "path": "/api/**",
                "origins": [
                    "https://app.example.com",
                    "http://localhost:3000",
                    "https://*.trusted.com",
                    {"regex": r"^https://pr-[0-9]+\.preview\.example\.org$"},
                ],
                "allow_headers": ["Content-Type", "Authorization", "X-Test-Marker"],
            },
            {
                "path": "/echo",
                "origins": ["https://app.example.com"],
                "methods": DROP,
                "allow_headers": DROP,
                "allow_private_network": DROP,
            },
        ],
    },
    drop_routes=("^/v[0-9]+/public/",),
)

TRACEBACK_MARKERS = ("Traceback", "Error handling request", "Unhandled exception")


def marker() -> str:
    return "hx-" + uuid.uuid4().hex[:16]


@dataclass
class RawResponse:
    status: int | None  # None: the connection closed without a status line
    head: str
    headers: list[tuple[str, str]]
    body: bytes
    raw: bytes
    closed: bool  # the server closed the connection after this response
    complete: bool = True  # the whole body arrived (by Content-Length or chunking)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None

    def cors_headers(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.headers if k.lower().startswith("access-control-")]


_STATUS = re.compile(rb"HTTP/[0-9]\.[0-9] (\d{3})")


def parse_responses(raw: bytes) -> list[RawResponse]:
    """Split raw bytes into responses (Content-Length / chunked / 204 aware)."""
    out: list[RawResponse] = []
    rest = raw
    while rest:
        end = rest.find(b"\r\n\r\n")
        if end == -1:
            break
        head = rest[:end].decode("latin-1")
        lines = head.split("\r\n")
        match = _STATUS.match(lines[0].encode("latin-1"))
        status = int(match[1]) if match else None
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        body_start = end + 4
        length = None
        chunked = False
        for name, value in headers:
            if name.lower() == "content-length":
                length = int(value)
            if name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        complete = True
        if status in (204, 304) or (status is not None and 100 <= status < 200):
            body, rest = b"", rest[body_start:]
        elif chunked:
            body, position = b"", body_start
            while True:
                line_end = rest.find(b"\r\n", position)
                if line_end == -1:
                    body, position, complete = rest[body_start:], len(rest), False
                    break
                size = int(rest[position:line_end].split(b";")[0] or b"0", 16)
                position = line_end + 2
                if size == 0:
                    trailer_end = rest.find(b"\r\n", position)
                    position = len(rest) if trailer_end == -1 else trailer_end + 2
                    break
                body += rest[position : position + size]
                position += size + 2
            rest = rest[position:]
        elif length is not None:
            body, rest = rest[body_start : body_start + length], rest[body_start + length :]
            complete = len(body) == length
        else:
            body, rest, complete = rest[body_start:], b"", False  # until the close
        if status is not None and 100 <= status < 200:
            continue  # interim responses
        out.append(RawResponse(status, head, headers, body, raw, False, complete))
    return out


def raw_exchange(
    port: int,
    data: bytes | list[bytes],
    *,
    timeout: float = 5.0,
    pause: float = 0.0,
    expect: int = 1,
    quiet: float = 0.6,
) -> tuple[list[RawResponse], bool, bytes]:
    """Send raw bytes, read until ``expect`` complete responses arrived, the server
    closes, or it goes quiet for ``quiet`` seconds after answering something.

    Returns the parsed responses, whether the server closed the connection, and
    the raw bytes received.
    """
    pieces = [data] if isinstance(data, bytes) else data
    received = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for piece in pieces:
                sock.sendall(piece)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        deadline = time.monotonic() + timeout
        sock.settimeout(quiet)
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if received:
                    break
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
            done = [r for r in parse_responses(received) if r.complete]
            if expect and len(done) >= expect:
                break
    responses = parse_responses(received)
    if responses:
        responses[-1].closed = closed
    return responses, closed, received


def request_bytes(
    method: str,
    target: str,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    *,
    host: str = "cors-edge.test",
    version: str = "HTTP/1.1",
) -> bytes:
    lines = [f"{method} {target} {version}"]
    if host:
        lines.append(f"Host: {host}")
    for name, value in headers or []:
        lines.append(f"{name}: {value}")
    if body and not any(
        n.lower() in ("content-length", "transfer-encoding") for n, _ in headers or []
    ):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_no_tracebacks(edge: Edge) -> None:
    text = edge.stderr.text()
    for needle in TRACEBACK_MARKERS:
        assert needle not in text, f"{needle!r} on the edge's stderr:\n{text[-4000:]}"


@contextlib.contextmanager
def traceback_free_edges(tmp: Path, upstream: Upstream) -> Iterator[EdgeFactory]:
    """A factory for a module's edges: on the way out, every edge it started is
    checked for tracebacks on its stderr, then all are stopped."""
    factory = EdgeFactory(tmp, upstream)
    try:
        yield factory
        for edge in factory.started:
            assert_no_tracebacks(edge)
    finally:
        factory.close()


def assert_exits_without_tracebacks(edge: Edge) -> None:
    """Stop ``edge`` and check all it ever wrote on stderr, read to the end of the pipe.

    Reading after the exit is what makes the check independent of timing: an exception
    logged while a connection is torn down is in the text, however late it came.
    """
    # SIGTERM drains for up to 10 s (lifecycle's cap; a refused Expect: 100-continue
    # request keeps it waiting that long today): give it room to exit by itself.
    assert edge.stop(timeout=30) == 0, edge.stderr.text()[-4000:]
    edge.stderr.wait_closed()
    assert_no_tracebacks(edge)


@dataclass
class HardEdge:
    edge: Edge
    upstream: Upstream
    seen: set[str] = field(default_factory=set)

    @property
    def port(self) -> int:
        return self.edge.port

    def flask_markers(self) -> set[str]:
        return {str(m) for m in self.upstream.markers()}

    def flask_entries(self, mark: str) -> list[dict[str, object]]:
        return [e for e in self.upstream.requests() if e.get("marker") == mark]


@pytest.fixture(scope="module")
def hard_edge(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[HardEdge]:
    factory = EdgeFactory(tmp_path_factory.mktemp("hard-edge"), upstream)
    edge = factory(HARDENING_POLICY)
    yield HardEdge(edge, upstream)
    try:
        assert_no_tracebacks(edge)
    finally:
        factory.close()


@pytest.fixture
def own_hard_edge(edge_factory: EdgeFactory, upstream: Upstream) -> HardEdge:
    """An edge with the hardening policy for one test alone: its stderr is that test's."""
    return HardEdge(edge_factory(HARDENING_POLICY), upstream)


def wait_for(predicate: object, timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return bool(predicate())  # type: ignore[operator]


def serve_faults() -> Iterator[FaultServer]:
    """A raw upstream with canned misbehaviours, running until the generator ends."""
    server = FaultServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fault() -> Iterator[FaultServer]:
    """A raw upstream with canned misbehaviours, one per test module that asks for it
    (a module whose tests change its state asks for one per test instead)."""
    yield from serve_faults()
