"""A real WebSocket upstream on loopback for the WebSocket hardening tests.

gunicorn's sync Flask cannot speak WebSocket, so (as in tests/e2e/test_websocket_e2e.py)
the upstream is a small aiohttp server, plus a raw-socket one that can send frames no
well-behaved library would (a permessage-deflate bomb). Both record what they saw.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import zlib
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class WsUpstream:
    """Routes: /ws/headers (first message: the handshake headers it got, then echo),
    /ws/echo, /ws/idle (never sends), /ws/big?size=N (sends one N-byte message),
    /ws/plain (a 200, not an upgrade), /ws/denied (403); plain HTTP: /http/ping, and
    /http/hold, which answers only once :attr:`release` is set."""

    url: str = ""
    close_codes: list[int | None] = field(default_factory=list)
    opened: int = 0
    received_sizes: list[int] = field(default_factory=list)
    held: int = 0  # /http/hold requests waiting now
    release: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def start(self) -> WsUpstream:
        app = web.Application()
        app.router.add_get("/{prefix:.*}/headers", self._headers)  # under any prefix
        app.router.add_get("/ws/echo", self._echo)
        app.router.add_get("/ws/idle", self._echo)
        app.router.add_get("/ws/big", self._big)
        app.router.add_get("/ws/flood", self._flood)
        app.router.add_get("/ws/plain", self._plain)
        app.router.add_get("/ws/denied", self._denied)
        app.router.add_get("/http/ping", self._ping)
        app.router.add_get("/http/hold", self._hold)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _serve(
        self, request: web.Request, first: str | bytes | None
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.opened += 1
        if isinstance(first, str):
            await ws.send_str(first)
        elif isinstance(first, bytes):
            await ws.send_bytes(first)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                self.received_sizes.append(len(message.data))
                await ws.send_str("echo:" + message.data[:64])
            elif message.type is aiohttp.WSMsgType.BINARY:
                self.received_sizes.append(len(message.data))
                await ws.send_bytes(message.data[:64])
        self.close_codes.append(ws.close_code)
        return ws

    async def _headers(self, request: web.Request) -> web.WebSocketResponse:
        seen = {name.lower(): value for name, value in request.headers.items()}
        return await self._serve(request, json.dumps(seen))

    async def _echo(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, None)

    async def _big(self, request: web.Request) -> web.WebSocketResponse:
        return await self._serve(request, b"z" * int(request.query["size"]))

    async def _flood(self, request: web.Request) -> web.WebSocketResponse:
        """Sends 64 KiB messages as fast as the peer takes them, until it closes."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.opened += 1

        async def flood() -> None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                while not ws.closed:
                    await ws.send_bytes(b"f" * 65536)

        sender = asyncio.ensure_future(flood())
        async for _ in ws:
            pass
        sender.cancel()
        self.close_codes.append(ws.close_code)
        return ws

    async def _plain(self, request: web.Request) -> web.Response:
        return web.Response(text="not a websocket")

    async def _denied(self, request: web.Request) -> web.Response:
        return web.Response(status=403, text="no")

    async def _ping(self, request: web.Request) -> web.Response:
        return web.Response(text="pong")

    async def _hold(self, request: web.Request) -> web.Response:
        self.held += 1
        try:
            await self.release.wait()
        finally:
            self.held -= 1
        return web.Response(text="released")


def deflate_bomb(inflated: int) -> bytes:
    """A permessage-deflate payload (RFC 7692: raw deflate, the trailing 00 00 ff ff
    removed) that inflates to ``inflated`` zero bytes, built without holding them."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(1024 * 1024)
    pieces = [compressor.compress(block) for _ in range(inflated // len(block))]
    pieces.append(compressor.flush(zlib.Z_SYNC_FLUSH))
    payload = b"".join(pieces)
    assert payload.endswith(b"\x00\x00\xff\xff")
    return payload[:-4]


def frame(
    payload: bytes, *, opcode: int = 0x2, compressed: bool, mask: bool, fin: bool = True
) -> bytes:
    """One WebSocket frame, final unless told (RSV1 marks a compressed message)."""
    first = (0x80 if fin else 0) | (0x40 if compressed else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head = bytes([first, mask_bit | length])
    elif length < 1 << 16:
        head = bytes([first, mask_bit | 126]) + length.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + length.to_bytes(8, "big")
    if not mask:
        return head + payload
    key = os.urandom(4)
    repeated = (key * (length // 4 + 1))[:length]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        length, "big"
    )
    return head + key + masked


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one frame (masked or not): (opcode, payload). For small frames only."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(await reader.readexactly(2), "big")
    elif length == 127:
        length = int.from_bytes(await reader.readexactly(8), "big")
    key = await reader.readexactly(4) if second & 0x80 else b""
    payload = await reader.readexactly(length)
    if key:
        payload = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    return first & 0x0F, payload


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


@dataclass
class BombUpstream:
    """A raw WebSocket server sending one oversized message, then waiting for the peer's
    close frame (its code is kept). Offered permessage-deflate, it sends ``payload`` as
    one compressed frame; otherwise the head of one uncompressed frame announcing
    ``inflated`` bytes."""

    payload: bytes
    inflated: int
    url: str = ""
    close_codes: list[int] = field(default_factory=list)
    compressed: list[bool] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> BombUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sender: asyncio.Task[None] | None = None
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            fields = {}
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                fields[name.strip().lower()] = value.strip()
            deflate = "permessage-deflate" in fields.get("sec-websocket-extensions", "")
            self.compressed.append(deflate)
            extension = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
            writer.write(
                (
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\n"
                    f"Sec-WebSocket-Accept: {accept_key(fields['sec-websocket-key'])}\r\n"
                    f"{extension}\r\n"
                ).encode()
            )
            if deflate:
                writer.write(frame(self.payload, compressed=True, mask=False))
            else:
                sender = asyncio.ensure_future(self._stream_zeros(writer))
            while True:
                opcode, data = await read_frame(reader)
                if opcode == 0x8:
                    self.close_codes.append(int.from_bytes(data[:2], "big") if data else 1005)
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if sender is not None:
                sender.cancel()
            writer.close()

    async def _stream_zeros(self, writer: asyncio.StreamWriter) -> None:
        # Only the head of a frame announcing ``inflated`` bytes: a bounded peer refuses
        # it at once, an unbounded one waits to buffer them all. (Payload bytes the peer
        # never reads would turn its close into a TCP reset, which can destroy the
        # close frame in flight.)
        writer.write(bytes([0x82, 127]) + self.inflated.to_bytes(8, "big"))
        await writer.drain()


async def raw_ws_connect(
    port: int, path: str, origin: str
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    """A WebSocket handshake over a plain socket, offering permessage-deflate.
    Returns the streams and the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Extensions: permessage-deflate\r\nOrigin: {origin}\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    return reader, writer, head


async def close_code_after(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> int | None:
    """Read frames until a close frame and answer it, as a browser does: its code
    (1005 without one), None at EOF."""
    while True:
        try:
            opcode, data = await read_frame(reader)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        if opcode == 0x8:
            writer.write(frame(data[:2], opcode=0x8, compressed=False, mask=True))
            return int.from_bytes(data[:2], "big") if data else 1005
