"""200 MB each way through cors-edge with the proxy's memory staying flat."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import aiohttp
import psutil

from tests.support import Edge

SIZE = 200 * 1024 * 1024
PIECE = bytes(range(256)) * 256  # 64 KiB, the pattern /api/download streams
MAX_GROWTH = 40 * 1024 * 1024  # far below the 200 MB a buffering proxy would need


class RssWatch:
    """Samples a process's RSS while a transfer runs."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.baseline = self.process.memory_info().rss
        self.peak = self.baseline
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.02)

    def __enter__(self) -> RssWatch:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    @property
    def growth(self) -> int:
        return self.peak - self.baseline


async def test_200_mb_download_streams(standard_edge: Edge) -> None:
    digest, expected, received = hashlib.sha256(), hashlib.sha256(), 0
    async with aiohttp.ClientSession() as session:
        with RssWatch(standard_edge.process.pid) as watch:
            async with session.get(
                f"{standard_edge.url}/api/download?mb=200",
                headers={"Origin": "http://localhost:3000"},
            ) as response:
                assert response.status == 200
                assert response.headers.get("Transfer-Encoding") == "chunked"
                async for chunk in response.content.iter_chunked(1 << 20):
                    received += len(chunk)
                    digest.update(chunk)
    for _ in range(SIZE // len(PIECE)):
        expected.update(PIECE)
    assert received == SIZE
    assert digest.hexdigest() == expected.hexdigest()
    assert watch.growth < MAX_GROWTH, f"proxy RSS grew {watch.growth / 1e6:.0f} MB"


async def test_200_mb_upload_streams(standard_edge: Edge) -> None:
    expected = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(SIZE // len(PIECE)):
            expected.update(PIECE)
            yield PIECE

    async with aiohttp.ClientSession() as session:
        with RssWatch(standard_edge.process.pid) as watch:
            async with session.post(
                f"{standard_edge.url}/api/upload",
                data=body(),
                headers={"Origin": "http://localhost:3000"},
            ) as response:
                assert response.status == 200
                result = await response.json()
    assert result == {"received": SIZE, "sha256": expected.hexdigest()}
    assert watch.growth < MAX_GROWTH, f"proxy RSS grew {watch.growth / 1e6:.0f} MB"
