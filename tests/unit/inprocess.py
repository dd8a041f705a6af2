"""An EdgeServer served in the test's own event loop, for tests where a cors-edge
process adds nothing; the upstream is still a real server on a real socket."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from proxy.forward import Upstream
from proxy.loader import load_policy_text
from proxy.records import PolicyHolder, RequestRecord
from proxy.server import EdgeServer


@dataclass
class InProcessEdge:
    server: EdgeServer
    port: int
    records: list[RequestRecord] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def record(self, count: int = 1) -> RequestRecord:
        """The ``count``-th record (observers run just after the response is written)."""
        async with asyncio.timeout(10):
            while len(self.records) < count:
                await asyncio.sleep(0.005)
        return self.records[count - 1]


@contextlib.asynccontextmanager
async def running_edge(policy: str, upstream_url: str) -> AsyncIterator[InProcessEdge]:
    config = dataclasses.replace(load_policy_text(policy), upstream=upstream_url)
    upstream = Upstream(config.upstream, config.timeouts, config.limits)
    await upstream.start()
    server = EdgeServer(PolicyHolder(config), upstream)
    runner = web.ServerRunner(server.make_server(), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    edge = InProcessEdge(server, runner.addresses[0][1])
    server.observers.append(edge.records.append)
    try:
        yield edge
    finally:
        await runner.cleanup()
        await upstream.close()


async def exchange(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


async def one_response(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read one response with a Content-Length (the connection may stay
    open: aiohttp lingers to drain a request body it did not read)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head_of(head)["content-length"])
            return head + await reader.readexactly(length)
    finally:
        writer.close()


def head_of(data: bytes) -> dict[str, str]:
    """The header fields of a raw response (lower-cased names; the last value wins)."""
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
    fields = [line.partition(":") for line in head.split("\r\n")[1:]]
    return {name.lower(): value.strip() for name, _, value in fields}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def read_responses(
    reader: asyncio.StreamReader, count: int, heads_only: tuple[int, ...] = ()
) -> list[bytes]:
    """``count`` responses: each a head and its Content-Length body, but the ones at
    ``heads_only`` (answers to HEAD)."""
    out = []
    for index in range(count):
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
        body = b""
        if length and index not in heads_only:
            body = await reader.readexactly(int(length[1]))
        out.append(head + body)
    return out


async def exchange_many(
    port: int, data: bytes, count: int, heads_only: tuple[int, ...] = ()
) -> list[bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        async with asyncio.timeout(10):
            return await read_responses(reader, count, heads_only)
    finally:
        writer.close()
