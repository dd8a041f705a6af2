"""The parser guard against aiohttp's own C request parser, read split at every byte.

A pipelined request behind an unswitched Upgrade must come out of the parser
whatever the reads look like: the Upgrade header, the end of the head and the body
may each be cut between two reads (TCP guarantees nothing about segment bounds).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_parser import HttpRequestParser

from proxy.parser_guard import UpgradeSafeParser

SECOND = b"GET /second HTTP/1.1\r\nHost: h\r\n\r\n"
PIPELINES = {
    "h2c": b"GET /first HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    "body": b"POST /first HTTP/1.1\r\nHost: h\r\nUpgrade: tcp\r\nConnection: upgrade\r\n"
    b"Content-Length: 6\r\n\r\nab\r\n\r\n",
    "chunked": b"POST /first HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "after a plain one": b"GET /zero HTTP/1.1\r\nHost: h\r\nX-Note: upgrade\r\n\r\n"
    b"GET /first HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
}


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _paths(loop: asyncio.AbstractEventLoop, reads: list[bytes]) -> list[str]:
    parser = UpgradeSafeParser(
        HttpRequestParser(BaseProtocol(loop), loop, 2**16, max_line_size=8190, max_field_size=8190)
    )
    paths = []
    for read in reads:
        messages, upgraded, _ = parser.feed_data(read)
        assert not upgraded
        paths.extend(message.path for message, _ in messages)
    return paths


def _expected(name: str) -> list[str]:
    return ["/zero", "/first", "/second"] if name == "after a plain one" else ["/first", "/second"]


@pytest.mark.parametrize("name", list(PIPELINES))
def test_one_read(loop: asyncio.AbstractEventLoop, name: str) -> None:
    assert _paths(loop, [PIPELINES[name] + SECOND]) == _expected(name)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_two_reads_split_anywhere(loop: asyncio.AbstractEventLoop, name: str) -> None:
    data = PIPELINES[name] + SECOND
    for cut in range(1, len(data)):
        assert _paths(loop, [data[:cut], data[cut:]]) == _expected(name), cut


@pytest.mark.parametrize("name", list(PIPELINES))
def test_three_reads_split_anywhere(loop: asyncio.AbstractEventLoop, name: str) -> None:
    data = PIPELINES[name] + SECOND
    for first in range(1, len(data) - 1, 3):
        for second in range(first + 1, len(data), 2):
            reads = [data[:first], data[first:second], data[second:]]
            assert _paths(loop, reads) == _expected(name), (first, second)


@pytest.mark.parametrize("name", list(PIPELINES))
def test_byte_by_byte(loop: asyncio.AbstractEventLoop, name: str) -> None:
    data = PIPELINES[name] + SECOND
    assert _paths(loop, [data[i : i + 1] for i in range(len(data))]) == _expected(name)


def test_a_websocket_upgrade_still_hands_over_the_stream(loop: asyncio.AbstractEventLoop) -> None:
    head = (
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    frames = b"\x81\x05hello\x81\x05world"
    data = head + frames
    for cut in range(1, len(data)):
        parser = UpgradeSafeParser(
            HttpRequestParser(
                BaseProtocol(loop), loop, 2**16, max_line_size=8190, max_field_size=8190
            )
        )
        stream, paths, switched = b"", [], False
        for read in (data[:cut], data[cut:]):
            if switched:  # aiohttp keeps what follows an upgrade away from the parser
                stream += read
                continue
            messages, switched, tail = parser.feed_data(read)
            paths.extend(message.path for message, _ in messages)
            stream += tail
        assert (paths, switched, stream) == (["/ws"], True, frames), cut
