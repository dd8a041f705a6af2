"""Protocol abuse over raw sockets: a clear 4xx or a closed connection, nothing smuggled.

Each smuggling attempt hides an inner request that cors-edge itself would refuse
(``Origin: https://evil.com`` to the enforced ``/api/**``). If its marker ever shows
up in the Flask request log, it was smuggled past the edge.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator

import pytest

from .conftest import (
    HardEdge,
    RawResponse,
    assert_exits_without_tracebacks,
    marker,
    raw_exchange,
    request_bytes,
)


def inner_request(mark: str) -> bytes:
    return (
        "GET /api/echo HTTP/1.1\r\nHost: cors-edge.test\r\nOrigin: https://evil.com\r\n"
        f"X-Test-Marker: {mark}\r\n\r\n"
    ).encode()


def smuggling_pairs(mark: str) -> dict[str, bytes]:
    inner = inner_request(mark)
    chunked_end = b"0\r\n\r\n"
    head = b"POST /public/echo HTTP/1.1\r\nHost: cors-edge.test\r\nX-Test-Marker: outer\r\n"
    cl_of = str(len(chunked_end + inner)).encode()
    return {
        "CL.TE": head
        + b"Content-Length: "
        + cl_of
        + b"\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked_end
        + inner,
        "TE.CL": head
        + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n"
        + f"{len(inner):x}\r\n".encode()
        + inner
        + b"\r\n0\r\n\r\n",
        "TE obfuscated: trailing space": head
        + b"Transfer-Encoding: chunked \r\nContent-Length: 5\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: xchunked": head
        + b"Transfer-Encoding: xchunked\r\nContent-Length: "
        + cl_of
        + b"\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: space before colon": head
        + b"Transfer-Encoding : chunked\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: chunked, identity": head
        + b"Transfer-Encoding: chunked, identity\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: identity, chunked + CL": head
        + b"Transfer-Encoding: identity, chunked\r\nContent-Length: "
        + cl_of
        + b"\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: two TE headers": head
        + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: folded": head
        + b"Transfer-Encoding:\r\n chunked\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: tab": head + b"Transfer-Encoding:\tchunked\r\n\r\n" + chunked_end + inner,
        "TE obfuscated: vertical tab": head
        + b"Transfer-Encoding:\x0bchunked\r\n\r\n"
        + chunked_end
        + inner,
        "TE obfuscated: CHUNKED + CL": head
        + b"Transfer-Encoding: CHUNKED\r\nContent-Length: "
        + cl_of
        + b"\r\n\r\n"
        + chunked_end
        + inner,
        "TE on HTTP/1.0": head.replace(b"HTTP/1.1", b"HTTP/1.0")
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + chunked_end
        + inner,
        "two Content-Lengths": head
        + b"Content-Length: 0\r\nContent-Length: "
        + cl_of
        + b"\r\n\r\n"
        # the inner request is the "body" of the second length
        + chunked_end
        + inner,
        "Content-Length list": head
        + b"Content-Length: 0, "
        + cl_of
        + b"\r\n\r\n"
        + chunked_end
        + inner,
        "Content-Length with sign": head + b"Content-Length: +0\r\n\r\n" + inner,
        "Content-Length hex": head + b"Content-Length: 0x0\r\n\r\n" + inner,
        "Content-Length space inside": head + b"Content-Length: 1 0\r\n\r\n" + inner,
        "bare LF line endings": head.replace(b"\r\n", b"\n")
        + b"Content-Length: 0\n\n"
        + inner.replace(b"\r\n", b"\n"),
        "bare CR inside a header": head + b"X-A: 1\rContent-Length: 0\r\n\r\n" + inner,
        "chunk size overflow": head
        + b"Transfer-Encoding: chunked\r\n\r\n"
        + b"ffffffffffffffffff1\r\nx\r\n0\r\n\r\n"
        + inner,
        "chunk size not hex": head
        + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n"
        + inner,
        "chunk size negative": head
        + b"Transfer-Encoding: chunked\r\n\r\n-1\r\nx\r\n0\r\n\r\n"
        + inner,
        "chunk without CRLF": head
        + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX0\r\n\r\n"
        + inner,
        "chunk extension with bare LF": head
        + b"Transfer-Encoding: chunked\r\n\r\n3;x\nabc\r\n0\r\n\r\n"
        + inner,
        "chunk size with leading space": head
        + b"Transfer-Encoding: chunked\r\n\r\n 3\r\nabc\r\n0\r\n\r\n"
        + inner,
    }


def _outcome(responses: list[RawResponse], closed: bool) -> str:
    if not responses:
        assert closed, "neither an answer nor a closed connection"
        return "closed"
    return ",".join(str(r.status) for r in responses)


def _send_smuggling_pair(port: int, name: str, mark: str) -> str:
    responses, closed, _ = raw_exchange(port, smuggling_pairs(mark)[name], timeout=3.0, expect=2)
    outcome = _outcome(responses, closed)
    for response in responses:
        assert response.status is not None and response.status < 500, (name, response.head)
    # if the edge read the inner request as a request of its own, it refused it itself
    if len(responses) > 1:
        assert responses[1].status == 403, (name, outcome)
    return outcome


def test_smuggling_pairs_never_reach_flask(hard_edge: HardEdge) -> None:
    marks: dict[str, str] = {}
    outcomes: dict[str, str] = {}
    for name in smuggling_pairs("x"):
        marks[name] = marker()
        outcomes[name] = _send_smuggling_pair(hard_edge.port, name, marks[name])
    served = hard_edge.flask_markers()
    smuggled = {name for name, mark in marks.items() if mark in served}
    assert not smuggled, f"smuggled to Flask: {smuggled} ({outcomes})"
    assert len(marks) >= 25


ABUSES: dict[str, bytes] = {
    "CRLF in the target": b"GET /public/status\r\nX-Injected: 1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "space in the target": b"GET /public/status x HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in the target": b"GET /public/status\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in a header value": b"GET /public/status HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "header without colon": b"GET /public/status HTTP/1.1\r\nHost: x\r\nOrigin\r\n\r\n",
    "space before colon": b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin : https://evil.com\r\n\r\n",
    "obs-fold origin": b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
    b" .evil.com\r\n\r\n",
    "lower-case method": b"get /public/status HTTP/1.1\r\nHost: x\r\n\r\n",
    "invalid method token": b"G(ET /public/status HTTP/1.1\r\nHost: x\r\n\r\n",
    "huge method": b"A" * 5000 + b" /public/status HTTP/1.1\r\nHost: x\r\n\r\n",
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "HTTP/9.9": b"GET /public/status HTTP/9.9\r\nHost: x\r\n\r\n",
    "HTTP/0.9": b"GET /public/status\r\n\r\n",
    "TLS ClientHello": bytes.fromhex("16030100a5010000a10303") + b"\x00" * 64,
    "binary garbage": bytes(range(256)),
    "asterisk-form GET": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    "OPTIONS *": b"OPTIONS * HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.com\r\n\r\n",
    "authority-form GET": b"GET cors-edge.test:80 HTTP/1.1\r\nHost: x\r\n\r\n",
    "empty header name": b"GET /public/status HTTP/1.1\r\nHost: x\r\n: v\r\n\r\n",
    "header name with space": b"GET /public/status HTTP/1.1\r\nHost: x\r\nX A: v\r\n\r\n",
    "non-ASCII header name": "GET /public/status HTTP/1.1\r\nHost: x\r\nX-\u00e9: v\r\n\r\n".encode(
        "utf-8"
    ),
    "Expect 100 to a refused origin": b"POST /api/echo HTTP/1.1\r\nHost: x\r\n"
    b"Origin: https://evil.com\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
}


def _send_abuse(port: int, name: str) -> None:
    responses, closed, _ = raw_exchange(port, ABUSES[name], timeout=3.0)
    outcome = _outcome(responses, closed)
    for response in responses:
        assert response.status is not None, (name, response.raw[:200])
        assert 400 <= response.status < 500, (name, outcome, response.head)
        assert response.cors_headers() == [], (name, response.head)
        assert b"100 Continue" not in response.raw


@pytest.mark.parametrize("name", sorted(ABUSES))
def test_malformed_requests_end_in_a_4xx_or_a_close(hard_edge: HardEdge, name: str) -> None:
    _send_abuse(hard_edge.port, name)


def test_oversized_header_is_431_with_the_routes_cors_headers(hard_edge: HardEdge) -> None:
    big = "x" * 5000
    allowed = request_bytes(
        "GET", "/api/items", [("Origin", "https://app.example.com"), ("X-Big", big)]
    )
    responses, closed, _ = raw_exchange(hard_edge.port, allowed, expect=0)
    response = responses[0]
    assert response.status == 431
    assert response.header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert response.header("Access-Control-Allow-Credentials") == "true"
    assert "Origin" in (response.header("Vary") or "")
    assert closed
    refused = request_bytes("GET", "/api/items", [("Origin", "https://evil.com"), ("X-Big", big)])
    responses, closed, _ = raw_exchange(hard_edge.port, refused, expect=0)
    assert responses[0].status == 431
    assert responses[0].cors_headers() == []
    assert closed
    public = request_bytes("GET", "/public/status", [("Origin", "https://evil.com"), ("X", big)])
    responses, _, _ = raw_exchange(hard_edge.port, public)
    assert responses[0].status == 431
    assert responses[0].header("Access-Control-Allow-Origin") == "*"


def test_too_many_headers_is_431(hard_edge: HardEdge) -> None:
    headers = [("Origin", "https://app.example.com")] + [(f"X-H{i}", "v") for i in range(60)]
    mark = marker()
    headers.append(("X-Test-Marker", mark))
    responses, closed, _ = raw_exchange(
        hard_edge.port, request_bytes("GET", "/api/items", headers), expect=0
    )
    assert responses[0].status == 431
    assert responses[0].header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert closed
    # at the limit it is served
    ok = [("Origin", "https://app.example.com")] + [(f"X-H{i}", "v") for i in range(30)]
    responses, _, _ = raw_exchange(hard_edge.port, request_bytes("GET", "/api/items", ok))
    assert responses[0].status == 200
    assert mark not in hard_edge.flask_markers()


def test_oversized_request_line_is_414(hard_edge: HardEdge) -> None:
    responses, closed, _ = raw_exchange(
        hard_edge.port, request_bytes("GET", "/public/status?" + "a" * 6000), expect=0
    )
    assert responses[0].status == 414
    assert closed


@pytest.fixture
def bystander() -> Iterator[tuple[int, list[bytes]]]:
    """A listener standing in for some other host: nothing may ever connect to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    received: list[bytes] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(0.5)
                try:
                    received.append(conn.recv(65536) or b"<connected>")
                except OSError:
                    received.append(b"<connected>")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], received
    stop.set()
    thread.join(2)
    server.close()


def test_never_an_open_proxy(hard_edge: HardEdge, bystander: tuple[int, list[bytes]]) -> None:
    port, received = bystander
    target = f"127.0.0.1:{port}"
    attempts = {
        "absolute-form": f"GET http://{target}/api/items HTTP/1.1\r\nHost: {target}\r\n\r\n",
        "absolute-form https": f"GET https://{target}/ HTTP/1.1\r\nHost: {target}\r\n\r\n",
        "absolute-form, public path": f"GET http://{target}/public/status HTTP/1.1\r\n"
        "Host: cors-edge.test\r\n\r\n",
        "CONNECT": f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n",
        "CONNECT with origin": f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
        "Origin: https://app.example.com\r\n\r\n",
        "userinfo-like path": f"GET @{target}/public/status HTTP/1.1\r\nHost: x\r\n\r\n",
        "scheme-relative path": f"GET //{target}/public/status HTTP/1.1\r\nHost: {target}\r\n\r\n",
        "Host of another host": f"GET /public/echo HTTP/1.1\r\nHost: {target}\r\n\r\n",
        "X-Forwarded-Host": "GET /public/echo HTTP/1.1\r\nHost: x\r\n"
        f"X-Forwarded-Host: {target}\r\n\r\n",
    }
    for name, text in attempts.items():
        responses, closed, _ = raw_exchange(hard_edge.port, text.encode(), timeout=3.0)
        outcome = _outcome(responses, closed)
        for response in responses:
            assert response.status is not None and response.status < 500, (name, outcome)
        if name.startswith(("absolute", "CONNECT", "userinfo")):
            assert responses and responses[0].status == 400, (name, outcome)
    assert received == [], f"cors-edge connected to a host that is not its upstream: {received}"


def test_http10_without_host(hard_edge: HardEdge) -> None:
    mark = marker()
    request = f"GET /public/echo HTTP/1.0\r\nX-Test-Marker: {mark}\r\n\r\n".encode()
    responses, closed, _ = raw_exchange(hard_edge.port, request, expect=0)
    assert responses[0].status == 200
    assert responses[0].header("Access-Control-Allow-Origin") == "*"
    assert closed  # HTTP/1.0 without keep-alive
    assert mark in hard_edge.flask_markers()
    refused = b"GET /api/items HTTP/1.0\r\nOrigin: https://evil.com\r\n\r\n"
    responses, _, _ = raw_exchange(hard_edge.port, refused, expect=0)
    assert responses[0].status == 403


def test_pipelined_requests_each_get_their_own_policy(hard_edge: HardEdge) -> None:
    mark = marker()
    pipeline = (
        request_bytes("GET", "/public/status", [("Origin", "https://evil.com")])
        + inner_request(mark)
        + request_bytes("GET", "/api/items", [("Origin", "https://app.example.com")])
    )
    responses, _, _ = raw_exchange(hard_edge.port, pipeline, expect=3)
    assert [r.status for r in responses] == [200, 403, 200]
    assert responses[0].header("Access-Control-Allow-Origin") == "*"
    assert responses[1].cors_headers() == []
    assert responses[2].header("Access-Control-Allow-Origin") == "https://app.example.com"
    assert mark not in hard_edge.flask_markers()


def test_no_tracebacks_on_stderr(own_hard_edge: HardEdge) -> None:
    """Every smuggling pair and malformed request above, sent to an edge of this test's
    own, is answered or closed as above, and not one leaves a traceback on its stderr."""
    for name in smuggling_pairs("x"):
        _send_smuggling_pair(own_hard_edge.port, name, marker())
    for name in ABUSES:
        _send_abuse(own_hard_edge.port, name)
    assert_exits_without_tracebacks(own_hard_edge.edge)


@pytest.mark.parametrize("count", [3, 50])
def test_half_closed_clients_get_every_pipelined_answer(hard_edge: HardEdge, count: int) -> None:
    """Requests pipelined before a shutdown(SHUT_WR) are all answered, in order, then the
    connection closes (aiohttp alone answered the first and closed; 50 is past its queue
    of 32 parsed requests)."""
    requests = [
        b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n\r\n",
        b"OPTIONS /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n"
        b"Access-Control-Request-Method: GET\r\n\r\n",
        b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.test\r\n\r\n",
    ]
    sent = [requests[index % 3] for index in range(count)]
    with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=10) as sock:
        sock.sendall(b"".join(sent))
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):  # to EOF: the edge closes once all are answered
            data += chunk
    statuses = []
    while data:  # each answer: a head, then Content-Length bytes (none for the 204s)
        head, _, data = data.partition(b"\r\n\r\n")
        statuses.append(head[9:12])
        length = re.search(rb"\r\nContent-Length: (\d+)", head)
        data = data[int(length[1]) if length else 0 :]
    assert statuses == [[b"200", b"204", b"403"][index % 3] for index in range(count)]


def test_half_closed_clients_still_get_their_answer(hard_edge: HardEdge) -> None:
    """A raw client that sends, then shutdown(SHUT_WR)s, then reads to EOF, is answered."""
    for request, status in [
        (b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\n\r\n", b"200"),
        (b"GET /api/items HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.test\r\n\r\n", b"403"),
        (b"GET /api/..%2fadmin HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    ]:
        with socket.create_connection(("127.0.0.1", hard_edge.port), timeout=10) as sock:
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(b"HTTP/1.1 " + status), (request, data[:80])
