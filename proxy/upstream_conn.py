"""One upstream HTTP/1.1 connection: an :class:`asyncio.Protocol`, one exchange at a time.

The response is read by :class:`proxy.upstream_parse.ResponseParser` (llhttp through
httptools); this module moves the bytes and keeps time.

- Flow control both ways: more than ``READ_HIGH`` response bytes waiting for the client
  pause reading from the upstream (a slow client slows the upstream, never grows the
  proxy); a full write buffer towards the upstream makes the body sender wait, so the
  client's body is read no faster than the upstream takes it.
- A streamed request body is sent by a task of its own, so an upstream that answers
  while still reading (an echo) is served both ways at once, as aiohttp's client did.
- The idle-read timer runs only while an answer is due and nobody has it yet: waiting
  for the head, or for body bytes with none buffered; each read restarts it.
- Bytes the upstream sends when nothing was asked (while pooled, or past a response)
  put the connection out of step: it is never reused.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Callable
from typing import cast

from .upstream_errors import Disconnected, ReadTimeout, UpstreamError
from .upstream_parse import HeadLimits, ResponseHead, ResponseParser

READ_HIGH = 1024 * 1024  # response bytes buffered for a slow client before pausing the upstream
READ_LOW = 256 * 1024
WRITE_HIGH = 256 * 1024  # request bytes queued towards the upstream before the client waits
# Pieces waiting together (a chunked answer's chunks) go to the client as one write, up to
# this much: one send and one chunk frame instead of many costs less than the join's copy
# (benchmarks: 0.89 -> 0.63 CPU s/GB for the app's chunked 64 KiB-chunk download).
JOIN_MAX = 512 * 1024
EXPECT_WAIT = 1.0  # how long a 100-continue request waits for the upstream's go-ahead

Body = bytes | AsyncIterable[bytes] | None


class UpstreamConnection(asyncio.Protocol):
    """A connection to the upstream; :class:`proxy.upstream_pool.UpstreamPool` owns it."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: HeadLimits,
        on_lost: Callable[[UpstreamConnection], None] | None = None,
    ) -> None:
        self.loop = loop
        self.limits = limits
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.served = 0  # exchanges completed on this connection
        self.idle_since = 0.0
        self._on_lost = on_lost
        self._parser: ResponseParser | None = None
        self._spare: ResponseParser | None = None  # the last one, if it can parse the next
        self._head: ResponseHead | None = None
        self._complete = False
        self._error: BaseException | None = None
        self._sent_all = False
        self._timeout: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._last_data = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._continue: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._reading_paused = False

    @property
    def buffered(self) -> int:
        """Response bytes received and not yet read by the consumer."""
        return self._buffered

    @property
    def reading_paused(self) -> bool:
        return self._reading_paused

    @property
    def writing_paused(self) -> bool:
        return self._write_paused

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._release_drain()

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost ends a close-delimited body

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._cancel_timer()
        parser = self._parser
        if parser is not None and self._error is None:
            self._error = parser.eof(clean=exc is None)
        self._wake()
        self._release_drain()
        if self._on_lost is not None:
            self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            self._last_data = self.loop.time()
        parser = self._parser
        if parser is None or parser.complete:
            # Bytes nobody asked for: the stream is out of step, never reuse it.
            if parser is not None:
                parser.keep_alive = False
            elif self.transport is not None:
                self.transport.abort()
            return
        fault = parser.feed(data)
        if fault is not None:
            self._fail(fault)

    # --- ResponseSink ----------------------------------------------------------------

    def head_received(self, head: ResponseHead) -> None:
        self._head = head
        self.continue_received()
        self._wake()

    def body_received(self, data: bytes) -> None:
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()
        self._wake()

    def message_complete(self) -> None:
        self._complete = True
        self._wake()

    def continue_received(self) -> None:
        if self._continue is not None and not self._continue.done():
            self._continue.set_result(None)

    # --- the exchange ----------------------------------------------------------------

    def begin(self, *, head_only: bool, read_timeout: float | None) -> None:
        """Start an exchange: a fresh parser, nothing buffered."""
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.reset(head_only)
            self._parser = spare
        else:
            self._parser = ResponseParser(self, self.limits, head_only=head_only)
        self._head = None
        self._complete = False
        self._error = None
        self._sent_all = False
        self._timeout = read_timeout
        self._continue = None

    def start(
        self, head: bytes, body: Body, *, chunked: bool, expect_continue: bool = False
    ) -> None:
        """Write the request head (a small body with it); a streamed body follows."""
        transport = self._writable()
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            self._sent_all = True
            return
        transport.write(head)
        self._sender = self.loop.create_task(self._send_body(body, chunked, expect_continue))

    async def _send_body(
        self, body: AsyncIterable[bytes], chunked: bool, expect_continue: bool
    ) -> None:
        try:
            if expect_continue and not await self._go_ahead():
                return  # answered without the body: the connection is not reused
            async for chunk in body:
                if self._error is not None:
                    return
                if not chunk:
                    continue
                transport = self._writable()
                if chunked:
                    transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                else:
                    transport.write(chunk)
                if self._write_paused:
                    await self._drained()
            if chunked:
                self._writable().write(b"0\r\n\r\n")
            self._sent_all = True
        except Exception as error:
            # The client's body failed (too large, stalled, cut short), or the upstream
            # went away. Once the upstream has answered, only the latter is harmless: the
            # connection is just not reused.
            if self._head is None or not isinstance(error, UpstreamError):
                self._fail(error)

    async def _go_ahead(self) -> bool:
        """Wait for ``100 Continue`` (or not long); False if answered already."""
        self._continue = self.loop.create_future()
        try:
            async with asyncio.timeout(EXPECT_WAIT):
                await self._continue
        except TimeoutError:
            pass  # RFC 9110 §10.1.1: send the body anyway
        if self._error is not None:
            raise self._error
        return self._head is None

    def _writable(self) -> asyncio.Transport:
        if self._error is not None:
            raise self._error
        transport = self.transport
        if transport is None or self.closed or transport.is_closing():
            received = self._parser.received if self._parser is not None else 0
            raise Disconnected("upstream closed the connection", nothing_received=received == 0)
        return transport

    async def _drained(self) -> None:
        self._drain = self.loop.create_future()
        await self._drain
        self._writable()

    def _release_drain(self) -> None:
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    async def response_head(self) -> ResponseHead:
        """The final response head (1xx skipped), within the idle-read timeout. An
        exchange that failed already (bad framing in the same read as the head) fails
        here, while the client can still get a clean error instead of a cut-off answer."""
        while self._head is None and self._error is None:
            await self._wait()
        if self._error is not None:
            raise self._error
        assert self._head is not None
        return self._head

    async def read_chunk(self) -> bytes:
        """The next piece of the body as received; ``b""`` once it is complete."""
        body = self._body
        while not body:
            if self._error is not None:
                raise self._error
            if self._complete:
                return b""
            await self._wait()
        if len(body) == 1 or self._buffered > JOIN_MAX:
            piece = body.popleft()
        else:
            piece = b"".join(body)
            body.clear()
        self._buffered -= len(piece)
        if self._reading_paused and self._buffered <= READ_LOW:
            self._resume_reading()
        return piece

    async def read_all(self) -> bytes:
        pieces: list[bytes] = []
        while piece := await self.read_chunk():
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finish(self) -> bool:
        """End the exchange; whether the connection may serve another one."""
        parser = self._parser
        reusable = (
            parser is not None
            and self._complete
            and parser.keep_alive
            and self._sent_all
            and self._error is None
            and not self.closed
        )
        self._parser = None
        self._cancel_timer()
        sender, self._sender = self._sender, None
        if sender is not None and not sender.done():
            sender.cancel()  # the client's body is no longer wanted
        self._body.clear()
        self._buffered = 0
        if reusable:
            self.served += 1
            if parser is not None and parser.reusable:
                self._spare = parser
            if self._reading_paused:
                self._resume_reading()
        return reusable

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    # --- internals -------------------------------------------------------------------

    def _resume_reading(self) -> None:
        self._reading_paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def _fail(self, error: Exception) -> None:
        if self._parser is not None:
            self._parser.keep_alive = False
        if not self._complete and self._error is None:
            self._error = error
        self._wake()
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        waiter = self._waiter = self.loop.create_future()
        if self._timeout is not None:
            self._last_data = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_at(self._last_data + self._timeout, self._tick)
        try:
            await waiter
        finally:
            self._waiter = None

    def _tick(self) -> None:
        """The idle-read timer: fires about once per timeout while an exchange is on."""
        assert self._timeout is not None
        now = self.loop.time()
        if self._waiter is None:  # busy relaying: the wait that comes next restarts the clock
            self._timer = self.loop.call_at(now + self._timeout, self._tick)
            return
        deadline = self._last_data + self._timeout
        if now < deadline:
            self._timer = self.loop.call_at(deadline, self._tick)
            return
        self._timer = None
        self._fail(ReadTimeout(f"upstream sent nothing for {self._timeout:g} s"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
