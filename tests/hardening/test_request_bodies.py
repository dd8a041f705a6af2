"""Request bodies reach Flask byte for byte as the client sent them (issue 10, defect 8).

aiohttp's server inflates a request body labelled ``Content-Encoding: gzip`` (or
deflate) by default, while cors-edge forwarded the compressed ``Content-Length`` and
the label: Flask got a truncated body that still claimed to be compressed. The real
Flask app under gunicorn reports the sha256 of the raw bytes it read and the framing
headers it saw.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import zlib

import aiohttp
import pytest

from tests.support import EdgeFactory, Upstream

from .conftest import marker, raw_exchange, request_bytes

POLICY = """
limits: {max_body_bytes: 16777216}
routes:
  - path: /api/**
    origins: [https://app.example.com]
    methods: [GET, POST, PUT]
"""


def _compress(encoding: str, data: bytes) -> bytes:
    return gzip.compress(data) if encoding == "gzip" else zlib.compress(data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
@pytest.mark.parametrize(
    "size",
    [
        1024,  # read whole and sent with the head
        509 * 1024,  # streamed (past the small-body threshold)
    ],
)
@pytest.mark.parametrize("chunked", [False, True])
async def test_compressed_body_reaches_flask_untouched(
    edge_factory: EdgeFactory, encoding: str, size: int, chunked: bool
) -> None:
    edge = edge_factory(POLICY)
    # Half random, half repetitive: compressible, but not trivially.
    raw = os.urandom(size // 2) + b"cors-edge " * (size // 20)
    body = _compress(encoding, raw)
    headers = {"Content-Encoding": encoding, "Content-Type": "application/octet-stream"}

    async def pieces() -> object:
        for start in range(0, len(body), 7000):
            yield body[start : start + 7000]

    data: object = pieces() if chunked else body
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(f"{edge.url}/api/upload?framing=1", data=data, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        seen = await response.json()
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    assert seen["received"] == len(body)
    assert seen["content_encoding"] == encoding
    if not chunked:
        assert seen["content_length"] == str(len(body))


async def test_gzip_bomb_is_not_inflated_by_the_edge(edge_factory: EdgeFactory) -> None:
    """A 100 KB gzip body inflating to 100 MB costs the edge nothing: it is relayed."""
    edge = edge_factory(POLICY)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip container
    zeros = bytes(1024 * 1024)
    body = b"".join(compressor.compress(zeros) for _ in range(100)) + compressor.flush()
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.post(
            f"{edge.url}/api/upload?framing=1", data=body, headers={"Content-Encoding": "gzip"}
        ) as response,
    ):
        assert response.status == 200
        seen = await response.json()
    assert seen["received"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate, chunked", "x-custom, chunked"])
def test_a_transfer_coding_other_than_chunked_is_refused(
    edge_factory: EdgeFactory, upstream: Upstream, coding: str
) -> None:
    """The parser removes chunked only: a gzip transfer coding would reach Flask still
    compressed and unlabelled. RFC 9112 §6.1: 501, and Flask never sees it."""
    edge = edge_factory(POLICY)
    mark = marker()
    body = gzip.compress(b"hello " * 100)
    chunked = b"%x\r\n" % len(body) + body + b"\r\n0\r\n\r\n"
    request = request_bytes(
        "POST",
        "/api/upload",
        [("Transfer-Encoding", coding), ("X-Test-Marker", mark)],
        chunked,
    )
    responses, _, _ = raw_exchange(edge.port, request)
    assert responses and responses[0].status == 501
    assert (responses[0].header("Connection") or "").lower() == "close"
    assert mark not in {str(m) for m in upstream.markers()}
