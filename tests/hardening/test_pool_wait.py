"""A request waiting for an upstream connection gets an answer in bounded time (issue 10,
item 4; issue 11): with every connection busy, ``timeouts.pool_wait`` later it is a 503
the page can read, the log says the pool was full, and the busy request is unharmed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support import EdgeFactory

from .conftest import assert_no_tracebacks, serve_faults
from .faultserver import FaultServer

POLICY = """
timeouts: {connect: 1, read: 30, pool_wait: 0.3}
limits: {max_upstream_connections: 1}
routes:
  - path: /**
    origins: [https://app.example.com]
    supports_credentials: true
"""
ORIGIN = {"Origin": "https://app.example.com"}


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    yield from serve_faults()  # one per test: the tests change its state and count on it


async def test_a_full_pool_answers_503_after_pool_wait(
    edge_factory: EdgeFactory, fault: FaultServer
) -> None:
    edge = edge_factory(POLICY, upstream_url=fault.url)
    async with aiohttp.ClientSession() as session:
        busy = asyncio.create_task(session.get(edge.url + "/slow?ms=3000", headers=ORIGIN))
        async with asyncio.timeout(20):
            while fault.stats.open_connections < 1:  # the one connection is taken
                await asyncio.sleep(0.01)
        async with session.get(edge.url + "/ok", headers=ORIGIN) as waiting:
            assert waiting.status == 503
            assert waiting.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
            assert (await waiting.json())["error"] == "no upstream connection free"
        async with await busy as response:
            assert response.status == 200  # the request holding the connection is unharmed
        async with session.get(edge.url + "/ok", headers=ORIGIN) as after:
            assert after.status == 200  # and the pool serves again once it is free
    edge.stderr.wait_for(r"no connection to upstream .* came free in time \(GET /ok answered 503\)")
    assert fault.stats.max_open_connections == 1
    assert_no_tracebacks(edge)
