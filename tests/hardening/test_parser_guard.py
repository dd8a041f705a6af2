"""A request with an Upgrade the edge does not switch to (h2c, tcp) is answered over
HTTP/1.1, and whatever was pipelined after it is answered too (issue 10, defect 14).

aiohttp 3.14's parser dropped the bytes after such a request; see proxy/parser_guard.py.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.support import Edge, EdgeFactory, Upstream

from .conftest import assert_no_tracebacks, marker, parse_responses, raw_exchange
from .faultserver import FaultServer

POLICY = """
routes:
  - path: /**
    origins: [https://app.example.com]
    methods: [GET, POST]
"""


@pytest.fixture(scope="module")
def guard_edge(
    tmp_path_factory: pytest.TempPathFactory, upstream: Upstream, fault: FaultServer
) -> Iterator[Edge]:
    factory = EdgeFactory(tmp_path_factory.mktemp("guard-edge"), upstream)
    edge = factory(POLICY, upstream_url=fault.url)
    yield edge
    try:
        assert_no_tracebacks(edge)
    finally:
        factory.close()


def _second(mark: str) -> bytes:
    return (
        f"GET /ok HTTP/1.1\r\nHost: h\r\nX-Test-Marker: {mark}\r\nConnection: close\r\n\r\n"
    ).encode()


UPGRADES = {
    "h2c": b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    "tcp": b"GET /ok HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n",
    "lower case": b"GET /ok HTTP/1.1\r\nhost: h\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n",
    "upper case": b"GET /ok HTTP/1.1\r\nHOST: h\r\nCONNECTION: UPGRADE\r\nUPGRADE: h2c\r\n\r\n",
    "POST with a body": b"POST /ok HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Content-Length: 11\r\n\r\nhello\r\n\r\n!!",
    "POST chunked": b"POST /ok HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("name", list(UPGRADES))
def test_the_request_after_an_unswitched_upgrade_is_answered(
    guard_edge: Edge, fault: FaultServer, name: str
) -> None:
    mark = marker()
    pipeline = UPGRADES[name] + _second(mark)
    responses, _, raw = raw_exchange(guard_edge.port, pipeline, expect=2, timeout=10)
    assert [r.status for r in responses] == [200, 200], raw[:600]
    first, second = (json.loads(r.body) for r in responses)
    if name.startswith("POST"):
        assert first["length"] == (11 if "body" in name else 5)
    assert second["marker"] == mark
    assert mark in fault.stats.as_json()["markers"]  # type: ignore[operator]


def test_an_upgrade_header_split_across_reads(guard_edge: Edge) -> None:
    mark = marker()
    whole = UPGRADES["h2c"] + _second(mark)
    cut = whole.index(b"pgrade: h2c") + 2  # "Up" | "grade: h2c..."
    with socket.create_connection(("127.0.0.1", guard_edge.port), timeout=10) as sock:
        sock.sendall(whole[:cut])
        time.sleep(0.3)  # two reads on the edge's side (a pause, not a bound)
        sock.sendall(whole[cut:])
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    responses = parse_responses(data)
    assert [r.status for r in responses] == [200, 200], data[:600]
    assert json.loads(responses[1].body)["marker"] == mark
