"""A tiny HTTP/1.1 upstream whose faults the tests choose (gunicorn cannot produce them).

Paths (the query is ignored unless said otherwise):

    /ok            200, JSON: marker, method, body length and sha256
    /echo-body     200, the request body streamed back, byte for byte
    /big?n=BYTES   200, BYTES of a repeating pattern (Content-Length)
    /slow?ms=N     200 after N ms
    /hang          never answers
    /close         closes the connection without answering
    /reset         sends the head and half the body, then resets the connection
    /reset-chunked sends a few chunks, then resets the connection
    /cors          200 with its own (wrong) Access-Control-* headers
    /stream?n=B    200, B bytes in chunks (Transfer-Encoding: chunked)
    /until-close?n=B  200, B bytes, neither Content-Length nor chunking: ends at the close
    /bare          200 with a body but no Content-Type; /bare-stream the same, chunked
    /long-header?n=B  200 with a Content-Security-Policy header value of B bytes
    /latin1-header?n=B  200, B bytes, a Latin-1 byte in Content-Disposition, a UTF-8 header
    /raw-headers   200, the request head exactly as received (latin-1 text in JSON)

A ``HEAD`` is answered with the head a ``GET`` would get and no body (RFC 9110 §9.3.2).

``drop_reused``: when set, a request arriving on a connection that already served
one is dropped (connection closed, no answer), as a restarted upstream would.

Run in a thread (``FaultServer().start()``) or as a process
(``python -m tests.hardening.faultserver``, which prints ``port N``); ``/__stats``
reports counters as JSON.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import struct
import sys
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

PATTERN = bytes(range(256)) * 256


@dataclass
class Stats:
    connections: int = 0
    open_connections: int = 0
    max_open_connections: int = 0
    requests: list[tuple[str, str, str | None, int]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "open_connections": self.open_connections,
            "max_open_connections": self.max_open_connections,
            "requests": len(self.requests),
            "markers": [m for _, _, m, _ in self.requests if m],
        }


class FaultServer:
    def __init__(self) -> None:
        self.stats = Stats()
        self.drop_reused = False
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- lifecycle -------------------------------------------------------------

    async def serve(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", port, backlog=512)
        self.port = self._server.sockets[0].getsockname()[1]

    def start(self) -> FaultServer:
        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.serve())
            self._ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)

    # --- HTTP ------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats = self.stats
        stats.connections += 1
        stats.open_connections += 1
        stats.max_open_connections = max(stats.max_open_connections, stats.open_connections)
        served = 0
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
                    return
                if served and self.drop_reused:
                    return  # a restarted upstream: the pooled connection is dead
                served += 1
                keep = await self._request(head, reader, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            stats.open_connections -= 1
            writer.close()

    async def _request(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        url = urlsplit(target)
        query = parse_qs(url.query)
        path = url.path
        mark = headers.get("x-test-marker")
        if path == "/__stats":
            return await self._send(writer, 200, json.dumps(self.stats.as_json()).encode())
        head_only = method == "HEAD"

        body_reader = self._body(headers, reader)
        if path == "/echo-body":
            return await self._echo(writer, headers, body_reader)
        digest = hashlib.sha256()
        length = 0
        async for piece in body_reader:
            digest.update(piece)
            length += len(piece)
        self.stats.requests.append((method, path, mark, length))
        if path == "/raw-headers":
            raw = json.dumps({"head": head.decode("latin-1")}).encode()
            return await self._send(writer, 200, raw, head_only=head_only)
        shaped = await self._shaped(path, query, writer, head_only)
        if shaped is not None:
            return shaped

        if path == "/hang":
            await asyncio.sleep(3600)
        if path == "/close":
            return False
        if path == "/slow":
            await asyncio.sleep(int(query.get("ms", ["100"])[0]) / 1000)
        if path == "/reset":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 50000)
            await writer.drain()
            _reset(writer)
            return False
        if path == "/reset-chunked":
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"4\r\nabcd\r\n" * 50)
            await writer.drain()
            await asyncio.sleep(0.05)
            _reset(writer)
            return False
        if path == "/big":
            size = int(query.get("n", ["1048576"])[0])
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {size}\r\n\r\n".encode()
            )
            sent = 0
            while sent < size:
                piece = PATTERN[: min(len(PATTERN), size - sent)]
                writer.write(piece)
                sent += len(piece)
                await writer.drain()
            return True
        extra = b""
        if path == "/cors":
            extra = b"Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Credentials: true\r\n"
        payload = json.dumps(
            {
                "marker": mark,
                "method": method,
                "path": target,
                "length": length,
                "sha256": digest.hexdigest(),
            }
        ).encode()
        return await self._send(writer, 200, payload, extra, head_only=head_only)

    async def _shaped(
        self,
        path: str,
        query: dict[str, list[str]],
        writer: asyncio.StreamWriter,
        head_only: bool,
    ) -> bool | None:
        """The responses whose framing or headers are the point; None: not one of them."""
        size = int(query.get("n", ["100000"])[0])
        body = (PATTERN * (size // len(PATTERN) + 1))[:size]
        if path in ("/stream", "/bare-stream"):
            kind = b"" if path == "/bare-stream" else b"Content-Type: application/x-stream\r\n"
            writer.write(b"HTTP/1.1 200 OK\r\n" + kind + b"Transfer-Encoding: chunked\r\n\r\n")
            if not head_only:
                for start in range(0, size, 7000):
                    piece = body[start : start + 7000]
                    writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        if path == "/until-close":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-stream\r\n\r\n")
            if not head_only:
                writer.write(body)
            await writer.drain()
            return False  # the close ends the body
        if path == "/bare":
            writer.write(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode())
            if not head_only:
                writer.write(body)
            await writer.drain()
            return True
        if path == "/latin1-header":
            disposition = b'Content-Disposition: attachment; filename="caf\xe9.txt"\r\n'
            utf8 = "X-Utf8: café ☕\r\n".encode()
            return await self._send(writer, 200, body, disposition + utf8, head_only=head_only)
        if path == "/long-header":
            csp = b"default-src 'self'; script-src " + b"x" * max(0, size - 31)
            csp_line = b"Content-Security-Policy: " + csp + b"\r\n"
            return await self._send(writer, 200, b"{}", csp_line, head_only=head_only)
        return None

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        extra: bytes = b"",
        *,
        head_only: bool = False,
    ) -> bool:
        writer.write(
            f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\n".encode()
            + extra
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + (b"" if head_only else body)
        )
        await writer.drain()
        return True

    async def _echo(
        self,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
        body: object,
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        async for piece in body:  # type: ignore[attr-defined]
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def _body(self, headers: dict[str, str], reader: asyncio.StreamReader):  # type: ignore[no-untyped-def]
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return
                remaining = size
                while remaining:
                    piece = await reader.read(min(remaining, 262144))
                    if not piece:
                        raise asyncio.IncompleteReadError(b"", remaining)
                    remaining -= len(piece)
                    yield piece
                await reader.readexactly(2)
        else:
            remaining = int(headers.get("content-length", "0") or 0)
            while remaining:
                piece = await reader.read(min(remaining, 262144))
                if not piece:
                    raise asyncio.IncompleteReadError(b"", remaining)
                remaining -= len(piece)
                yield piece


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    server = FaultServer()

    async def run() -> None:
        await server.serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
        print(f"port {server.port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


if __name__ == "__main__":
    main()
