"""Micro-benchmark: CPU per request of the upstream leg alone, lean client vs aiohttp.

    .venv/bin/python -m benchmarks.clientbench [--requests 3000] [--rounds 3]

A raw upstream in a child process answers every request with a fixed gunicorn-like
answer, either keeping the connection (as a gthread worker does) or closing it (as a
sync worker does). This process sends the same GET through ``proxy.upstream_pool``
and through aiohttp's ``ClientSession`` set up as ``proxy/forward.py`` used to, one
request at a time on uvloop, and divides its own CPU time (user + system) by the
requests.

Measured 2026-12-01 08:30 UTC on the shared 2-core box (load average 4-10 from other
sessions: absolute figures swing by 2x between runs, the ratio much less), medians of
3 alternated rounds of 2,000 requests, several runs::

    keep-alive upstream          lean 38-92 µs     aiohttp 93-142 µs    (0.41-0.65x)
    a connection per request     lean 150-390 µs   aiohttp 335-520 µs   (0.45-0.80x)
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from proxy.policy import Limits, Timeouts
from proxy.upstream_pool import UpstreamPool

HEADERS = CIMultiDict(
    [
        ("Host", "app.test"),
        ("Origin", "https://app.example.com"),
        ("X-Forwarded-For", "127.0.0.1"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "app.test"),
    ]
)
ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: Tue, 01 Dec 2026 07:30:00 GMT\r\n"
    b"Connection: %s\r\nContent-Type: application/json\r\nContent-Length: 27\r\n"
    b"Vary: Origin\r\n\r\n"
    b'{"ok": true, "pong": 12345}'
)
UPSTREAM = """
import asyncio, sys
answer, close = sys.argv[1].encode('latin-1'), sys.argv[2] == 'close'
class Answer(asyncio.Protocol):
    def connection_made(self, transport): self.transport, self.buffer = transport, b''
    def data_received(self, data):
        self.buffer += data
        while b'\\r\\n\\r\\n' in self.buffer:
            self.buffer = self.buffer.partition(b'\\r\\n\\r\\n')[2]
            self.transport.write(answer)
            if close:
                self.transport.close()
                return
async def main():
    server = await asyncio.get_running_loop().create_server(Answer, '127.0.0.1', int(sys.argv[3]))
    print('ready', flush=True)
    await asyncio.Event().wait()
try:
    import uvloop
    uvloop.run(main())
except ImportError:
    asyncio.run(main())
"""

Send = Callable[[], Awaitable[None]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _cpu_per_request(send: Send, count: int) -> float:
    for _ in range(min(200, count)):  # warm up: pools, caches
        await send()
    started = time.process_time()
    for _ in range(count):
        await send()
    return (time.process_time() - started) / count * 1e6


async def _lean(url: str, count: int) -> float:
    pool = UpstreamPool.for_config(url, Timeouts(), Limits())

    async def send() -> None:
        response = await pool.request("GET", "/api/ping", HEADERS.items(), None)
        await response.read()
        response.release()

    try:
        return await _cpu_per_request(send, count)
    finally:
        await pool.close()


async def _aiohttp(url: str, count: int) -> float:
    timeouts = Timeouts()
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=timeouts.upstream_idle),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(sock_connect=timeouts.connect, sock_read=timeouts.read),
        read_bufsize=256 * 1024,
    )
    target = URL(url + "/api/ping", encoded=True)

    async def send() -> None:
        response = await session.request(
            "GET", target, headers=HEADERS, allow_redirects=False, compress=None, chunked=None
        )
        await response.read()
        response.release()

    try:
        return await _cpu_per_request(send, count)
    finally:
        await session.close()


async def _measure(url: str, count: int, rounds: int) -> tuple[float, float]:
    lean, old = [], []
    for _ in range(rounds):  # alternated, like the other benchmarks
        lean.append(await _lean(url, count))
        old.append(await _aiohttp(url, count))
    return statistics.median(lean), statistics.median(old)


def _run(measured: Awaitable[tuple[float, float]]) -> tuple[float, float]:
    """On uvloop, as the edge runs (proxy.runtime), where it is installed."""

    async def wrapped() -> tuple[float, float]:
        return await measured

    try:
        import uvloop
    except ImportError:
        return asyncio.run(wrapped())
    return uvloop.run(wrapped())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    for mode, label in (
        ("keep-alive", "keep-alive upstream"),
        ("close", "a connection per request"),
    ):
        port = _free_port()
        answer = (ANSWER % mode.encode()).decode("latin-1")
        child = subprocess.Popen(
            [sys.executable, "-c", UPSTREAM, answer, mode, str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
            lean, old = asyncio.run(
                _measure(f"http://127.0.0.1:{port}", args.requests, args.rounds)
            )
        finally:
            child.terminate()
            child.wait(5)
        print(f"{label:28} lean {lean:6.1f} µs   aiohttp {old:6.1f} µs   ({lean / old:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
