"""A raw-socket upstream that answers with exactly the bytes a test scripts.

Each request (read whole: head, then a ``Content-Length`` or chunked body, framing
bytes and all) takes the next :class:`Reply` of the script, whatever connection it
arrives on. What every request looked like on the wire is kept in ``received``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reply:
    """Bytes to write (a float pauses that many seconds), then keep the connection or close."""

    pieces: tuple[bytes | float, ...] = ()
    close: bool = False
    read_body: bool = True  # False: answer right after the head (an early answer)
    reset: bool = False  # close with a TCP reset (RST), not a FIN


@dataclass
class CannedServer:
    replies: list[Reply]
    received: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    unix_path: str | None = None
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"unix:{self.unix_path}" if self.unix_path else f"http://127.0.0.1:{self.port}"

    async def start(self) -> CannedServer:
        if self.unix_path:
            self._server = await asyncio.start_unix_server(self._serve, self.unix_path)
        else:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while self.replies:
                request = await _read_request(reader, self.replies[0].read_body)
                if request is None:
                    return
                self.received.append(request)
                reply = self.replies.pop(0)
                for piece in reply.pieces:
                    if isinstance(piece, float):
                        await writer.drain()
                        await asyncio.sleep(piece)
                    else:
                        writer.write(piece)
                await writer.drain()
                if reply.reset:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                if reply.close:
                    return
            await reader.read()  # script done: hold the connection until the client leaves
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return  # stopped by the test: end quietly (asyncio logs a cancelled handler)
        finally:
            self._tasks.discard(task)
            writer.close()


async def _read_request(reader: asyncio.StreamReader, read_body: bool) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    if not read_body:
        return head
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        return head + await _read_chunks(reader)
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return head + await reader.readexactly(int(line.split(b":", 1)[1]))
    return head


async def _read_chunks(reader: asyncio.StreamReader) -> bytes:
    raw = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        raw += size_line
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the empty line
                line = await reader.readuntil(b"\r\n")
                raw += line
                if line == b"\r\n":
                    return raw
        raw += await reader.readexactly(size + 2)
