"""Protocol hygiene on the way in (issue 10, defect 14).

- ``Host`` must be ``host[:port]``: userinfo, paths and spaces are refused with 400.
- An HTTP/1.0 request without ``Host`` reaches the upstream with the address the
  client connected to (the listener's), never the upstream's own address.
- The forwarded family (``Forwarded``, every ``X-Forwarded-*``, ``X-Real-IP``…)
  passes only from a peer in ``trust_forwarded_from``.
- Header bytes that are not UTF-8 are refused with 400 (not dropped); UTF-8 goes
  upstream byte for byte.
- HTTP/1.0 clients are never sent ``100 Continue``.

What the upstream received is read from the raw upstream's ``/raw-headers`` echo.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.support import Edge, Upstream

from .conftest import marker, raw_exchange, request_bytes, traceback_free_edges
from .faultserver import FaultServer

ROUTES = """
routes:
  - path: /**
    origins: [https://app.example.com]
    methods: [GET, POST]
"""
TRUSTED = "trust_forwarded_from: [127.0.0.1/32]\n" + ROUTES

# Everything a WSGI server or framework may read as where the request came from.
FAMILY = [
    ("Forwarded", "for=203.0.113.9;proto=https;host=evil.example"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Forwarded-Ssl", "on"),
    ("X-Forwarded-Protocol", "ssl"),
    ("X-Forwarded-Server", "evil.example"),
    ("X-Forwarded-Scheme", "https"),
    ("X-Real-IP", "203.0.113.9"),
    ("X-Client-IP", "203.0.113.9"),
    ("True-Client-IP", "203.0.113.9"),
    ("Front-End-Https", "on"),
    ("X-Url-Scheme", "https"),
    ("X-Scheme", "https"),
]


@pytest.fixture(scope="module")
def edges(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, fault: FaultServer
) -> Iterator[dict[str, Edge]]:
    with traceback_free_edges(tmp_path_factory.mktemp("hygiene-edge"), upstream) as factory:
        yield {
            "plain": factory(ROUTES, upstream_url=fault.url),
            "trusted": factory(TRUSTED, upstream_url=fault.url),
        }


def _upstream_head(edge: Edge, request: bytes) -> tuple[str, list[tuple[str, str]]]:
    """The request line and header lines the upstream received, as it received them."""
    responses, _, _ = raw_exchange(edge.port, request, timeout=10)
    assert responses and responses[0].status == 200, responses[:1]
    head = json.loads(responses[0].body)["head"]
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _names(headers: list[tuple[str, str]]) -> set[str]:
    return {name.lower() for name, _ in headers}


@pytest.mark.parametrize(
    "host",
    [
        "user@evil.example",
        "user:secret@app.example.com",
        "@app.example.com",
        "app.example.com@evil.example:80",
        "app.example.com/admin",
        "app.example.com\\admin",
        "app example.com",
        "app.example.com?x=1",
        "app.example.com#x",
        "app.example.com:80:81",
    ],
)
def test_a_host_that_is_not_host_port_is_refused(
    edges: dict[str, Edge], fault: FaultServer, host: str
) -> None:
    mark = marker()
    request = request_bytes("GET", "/raw-headers", [("X-Test-Marker", mark)], host=host)
    responses, closed, _ = raw_exchange(edges["plain"].port, request, expect=0, timeout=10)
    assert responses and responses[0].status == 400, (host, responses[:1])
    assert closed
    assert mark not in fault.stats.as_json()["markers"]  # type: ignore[operator]


@pytest.mark.parametrize(
    "host", ["app.example.com", "app.example.com:8443", "127.0.0.1:8080", "[::1]:8080", ""]
)
def test_a_valid_host_goes_upstream_as_sent(edges: dict[str, Edge], host: str) -> None:
    request = request_bytes("GET", "/raw-headers", [("Host", host)], host="")
    _, headers = _upstream_head(edges["plain"], request)
    assert [value for name, value in headers if name.lower() == "host"] == [host]


def test_http10_without_host_gets_the_listeners_address(
    edges: dict[str, Edge], fault: FaultServer
) -> None:
    edge = edges["plain"]
    request = request_bytes("GET", "/raw-headers", host="", version="HTTP/1.0")
    _, headers = _upstream_head(edge, request)
    hosts = [value for name, value in headers if name.lower() == "host"]
    assert hosts == [f"127.0.0.1:{edge.port}"], hosts
    assert str(fault.port) not in hosts[0]
    assert "x-forwarded-host" not in _names(headers)  # the client named no host
    # With a Host, HTTP/1.0 keeps it.
    request = request_bytes("GET", "/raw-headers", host="app.example.com", version="HTTP/1.0")
    _, headers = _upstream_head(edge, request)
    assert [v for n, v in headers if n.lower() == "host"] == ["app.example.com"]


def test_the_forwarded_family_is_dropped_from_an_untrusted_peer(edges: dict[str, Edge]) -> None:
    sent = [*FAMILY, ("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Host", "evil.example")]
    _, headers = _upstream_head(edges["plain"], request_bytes("GET", "/raw-headers", sent))
    names = _names(headers)
    for name, _ in FAMILY:
        assert name.lower() not in names, (name, headers)
    values = {name.lower(): value for name, value in headers}
    assert values["x-forwarded-for"] == "127.0.0.1"
    assert values["x-forwarded-proto"] == "http"
    assert values["x-forwarded-host"] == "cors-edge.test"


def test_the_forwarded_family_is_kept_from_a_trusted_peer(edges: dict[str, Edge]) -> None:
    sent = [*FAMILY, ("X-Forwarded-For", "203.0.113.9")]
    _, headers = _upstream_head(edges["trusted"], request_bytes("GET", "/raw-headers", sent))
    for name, value in FAMILY:
        assert (name, value) in headers, (name, headers)
    values = {name.lower(): value for name, value in headers}
    assert values["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


def test_header_bytes_that_are_not_utf8_are_refused(
    edges: dict[str, Edge], fault: FaultServer
) -> None:
    mark = marker()
    for value in (b"caf\xe9", b"\xff\xfe", b"ok \xc3"):
        request = (
            b"GET /raw-headers HTTP/1.1\r\nHost: h\r\nX-Test-Marker: "
            + mark.encode()
            + b"\r\nX-Name: "
            + value
            + b"\r\n\r\n"
        )
        responses, closed, _ = raw_exchange(edges["plain"].port, request, expect=0, timeout=10)
        assert responses and responses[0].status == 400, (value, responses[:1])
        assert closed
    assert mark not in fault.stats.as_json()["markers"]  # type: ignore[operator]


def test_utf8_header_bytes_go_upstream_byte_for_byte(edges: dict[str, Edge]) -> None:
    value = "café ☕ 日本".encode()
    request = b"GET /raw-headers HTTP/1.1\r\nHost: h\r\nX-Name: " + value + b"\r\n\r\n"
    _, headers = _upstream_head(edges["plain"], request)
    received = [v for n, v in headers if n.lower() == "x-name"]
    assert [v.encode("latin-1") for v in received] == [value]


def test_http10_clients_are_never_sent_100_continue(edges: dict[str, Edge]) -> None:
    body = b"abc"
    headers = [("Expect", "100-continue"), ("Content-Length", "3")]
    request = request_bytes("POST", "/ok", headers, version="HTTP/1.0") + body
    responses, _, raw = raw_exchange(edges["plain"].port, request, expect=0, timeout=10)
    assert b"100 Continue" not in raw, raw[:200]
    assert responses and responses[0].status == 200
    assert json.loads(responses[0].body)["length"] == 3
    # HTTP/1.1 clients still get it.
    request = request_bytes("POST", "/ok", [*headers, ("Connection", "close")])
    _, _, raw = raw_exchange(edges["plain"].port, request + body, expect=0, timeout=10)
    assert raw.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "), raw[:200]


def test_non_utf8_bytes_later_on_a_keep_alive_connection_are_refused(
    edges: dict[str, Edge],
) -> None:
    """The check runs once a connection sent a byte past ASCII, whenever that is."""
    with socket.create_connection(("127.0.0.1", edges["plain"].port), timeout=10) as sock:
        sock.sendall(request_bytes("GET", "/ok"))
        first = sock.recv(65536)
        assert first.startswith(b"HTTP/1.1 200 "), first[:100]
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: h\r\nX-Name: caf\xe9\r\n\r\n")
        second = b""
        while chunk := sock.recv(65536):
            second += chunk
    assert second.startswith(b"HTTP/1.1 400 "), second[:100]


def test_without_host_no_request_counts_as_same_origin(edges: dict[str, Edge]) -> None:
    """The listener's address stands in for Host upstream, never for same-origin."""
    edge = edges["plain"]
    own = ("Origin", f"http://127.0.0.1:{edge.port}")
    request = request_bytes("GET", "/raw-headers", [own], host="", version="HTTP/1.0")
    responses, _, _ = raw_exchange(edge.port, request, expect=0, timeout=10)
    assert responses and responses[0].status == 403  # judged cross-origin: refused
    request = request_bytes("GET", "/raw-headers", [own], host=f"127.0.0.1:{edge.port}")
    responses, _, _ = raw_exchange(edge.port, request, timeout=10)
    assert responses and responses[0].status == 200  # with Host: same-origin, forwarded


REFUSED_HEADS = {
    "431 HTTP/1.1": request_bytes("GET", "/x", [("X-Big", "b" * 70000)]),
    "431 HTTP/1.0": request_bytes("GET", "/x", [("X-Big", "b" * 70000)], version="HTTP/1.0"),
    "414": b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: h\r\n\r\n",
    "400 two lengths": b"GET /x HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
    b"Content-Length: 2\r\n\r\n",
    "400 HTTP/0.9": b"GET /public/status\r\n\r\n",
    "400 bad host": request_bytes("GET", "/x", host="user@h"),
}


@pytest.mark.parametrize("name", list(REFUSED_HEADS))
def test_refused_heads_are_answered_in_http11_and_closed(edges: dict[str, Edge], name: str) -> None:
    """The version of a head the edge refused is none to answer in (aiohttp's placeholder
    for it says 1.0): the answer says HTTP/1.1, as RFC 9110 §2.5 asks of a 1.1 server."""
    responses, closed, raw = raw_exchange(edges["plain"].port, REFUSED_HEADS[name], expect=0)
    assert raw.startswith(f"HTTP/1.1 {name.split()[0]} ".encode()), raw[:100]
    assert closed and responses[0].header("Connection") == "close"
    assert responses[0].header("Server") == "cors-edge"
    assert json.loads(responses[0].body)["status"] == int(name.split()[0])


def test_a_refused_head_request_gets_no_body(edges: dict[str, Edge]) -> None:
    request = request_bytes("HEAD", "/x", host="user@h")
    responses, closed, raw = raw_exchange(edges["plain"].port, request, expect=0)
    assert raw.startswith(b"HTTP/1.1 400 ") and closed
    assert raw.endswith(b"\r\n\r\n") and int(responses[0].header("Content-Length") or 0) > 0
