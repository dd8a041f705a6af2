"""One upstream HTTP/1.1 connection: an :class:`asyncio.Protocol` on llhttp (httptools).

One exchange at a time (no pipelining). The response head is parsed by llhttp with the
header limits given; a ``Content-Length`` body, or a close-delimited one, then bypasses
the parser: each socket read is handed over as it is, no copy. Chunked bodies go
through llhttp (extensions and trailers are parsed and dropped, as before).

Flow control both ways: more than ``READ_HIGH`` response bytes waiting for the client
pause reading from the upstream (a slow client slows the upstream, never the proxy's
memory); a full write buffer towards the upstream makes the body sender wait, so the
client's body is read no faster than the upstream takes it.

Why httptools and not aiohttp's exported parser: ``benchmarks/parserbench.py``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from typing import cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .upstream_errors import (
    BodyIncomplete,
    Disconnected,
    HeadersTooLarge,
    ProtocolFault,
    ReadTimeout,
    UpstreamError,
)

READ_HIGH = 1024 * 1024  # response bytes buffered for a slow client before pausing the upstream
READ_LOW = 256 * 1024
WRITE_HIGH = 256 * 1024  # request bytes queued towards the upstream before the client waits
JOIN_MAX = 64 * 1024  # several small buffered pieces are handed over as one
EXPECT_WAIT = 1.0  # how long a 100-continue request waits for the upstream's go-ahead

Body = bytes | AsyncIterable[bytes] | None


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Bounds on a response head: one header line, and the whole head with any 1xx."""

    max_line: int = 16 * 1024
    max_total: int = 64 * 1024


@dataclass(frozen=True, slots=True)
class ResponseHead:
    status: int
    reason: str
    version: str
    headers: CIMultiDictProxy[str]
    content_length: int | None
    chunked: bool
    keep_alive: bool


class _StopParsing(Exception):
    """Raised from a parser callback: the rest of the bytes are not the parser's to read."""


def _text(raw: bytes) -> str:
    # As aiohttp decodes them, so the relayed bytes are the upstream's own.
    return raw.decode("utf-8", "surrogateescape")


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
        self._active = False
        self._parser: httptools.HttpResponseParser | None = None
        self._fault: UpstreamError | None = None
        self._write_paused = False
        self._drain: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._body: deque[bytes] = deque()
        self._reset(False, None)

    def _reset(self, head_only: bool, read_timeout: float | None) -> None:
        self._head_only = head_only
        self._timeout = read_timeout
        self._reason = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._received = 0  # bytes received while the head was incomplete
        self._head: ResponseHead | None = None
        self._raw_left = 0  # bytes of a Content-Length body still due, read past the parser
        self._until_eof = False
        self._complete = False
        self._keep_alive = False
        self._sent_all = False
        self._error: BaseException | None = None
        self._body.clear()
        self._buffered = 0
        self._reading_paused = False
        self._last_data = 0.0
        self._continue: asyncio.Future[None] | None = None

    # --- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)

    def eof_received(self) -> bool | None:
        return None  # the transport closes; connection_lost ends a close-delimited body

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._cancel_timer()
        if self._active and not self._complete and self._error is None:
            if self._head is None:
                nothing = self._received == 0
                self._error = Disconnected(
                    "upstream closed the connection before answering", nothing_received=nothing
                )
            elif self._until_eof:
                self._keep_alive = False
                self._complete = True  # a close-delimited body ends here
            else:
                self._error = BodyIncomplete("upstream closed the connection mid-body")
        self._wake()
        drain, self._drain = self._drain, None
        if drain is not None and not drain.done():
            drain.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            self._last_data = self.loop.time()
        if not self._active or self._complete:
            # Bytes nobody asked for (after a response, or while pooled): the stream is
            # out of step, so the connection must never serve another request.
            self._keep_alive = False
            if not self._active and self.transport is not None:
                self.transport.abort()
            return
        left = self._raw_left
        if left:
            self._raw_body(data, left)
        elif self._until_eof:
            self._push(data)
        else:
            self._parse(data)

    def _raw_body(self, data: bytes, left: int) -> None:
        size = len(data)
        if size < left:
            self._raw_left = left - size
            self._push(data)
            return
        self._raw_left = 0
        if size > left:
            self._keep_alive = False  # more than Content-Length said: out of step
            data = data[:left]
        self._push(data)
        self._message_done()

    def _parse(self, data: bytes) -> None:
        parser = self._parser
        assert parser is not None
        if self._head is None:
            if self._received > self.limits.max_total:
                self._fail(HeadersTooLarge(f"response head over {self.limits.max_total} bytes"))
                return
            self._received += len(data)
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolFault("upstream switched protocols unasked"))
        except httptools.HttpParserCallbackError as error:
            fault, self._fault = self._fault, None
            if fault is None and isinstance(error.__context__, _StopParsing):
                # A HEAD answer ends with its head; reusable only if nothing followed it.
                self._keep_alive = self._keep_alive and data.endswith(b"\r\n\r\n")
                return
            self._fail(fault or ProtocolFault(f"invalid response: {error}"))
        except httptools.HttpParserError as error:
            self._fail(ProtocolFault(f"invalid response: {error}"))

    # --- llhttp callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._complete:
            self._keep_alive = False  # a second message where one was asked for
            raise _StopParsing
        self._raw_headers = []

    def on_status(self, reason: bytes) -> None:
        self._reason = reason
        self._count(len(reason) + 15)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._head is not None:
            return  # a trailer: parsed, not relayed (as before)
        line = len(name) + len(value) + 4
        if line > self.limits.max_line:
            self._abort_parse(
                HeadersTooLarge(f"response header {_text(name)!r} is {line} bytes long")
            )
        self._count(line)
        self._raw_headers.append((name, value))

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self.limits.max_total:
            self._abort_parse(HeadersTooLarge(f"response head over {self.limits.max_total} bytes"))

    def _abort_parse(self, fault: UpstreamError) -> None:
        self._fault = fault
        raise fault

    def on_headers_complete(self) -> None:
        parser = self._parser
        assert parser is not None
        status = parser.get_status_code()
        if status < 200:
            # 1xx are skipped, as aiohttp's client did; the final answer follows.
            if status == 100 and self._continue is not None and not self._continue.done():
                self._continue.set_result(None)
            return
        head = self._make_head(parser, status)
        self._head = head
        self._keep_alive = head.keep_alive
        if self._continue is not None and not self._continue.done():
            self._continue.set_result(None)
        self._wake()
        if self._head_only:
            self._message_done()
            raise _StopParsing
        if status in (204, 304) or head.chunked:
            return  # llhttp knows these have no body, or reads the chunks
        if head.content_length is not None:
            self._raw_left = head.content_length  # this read's rest still comes via on_body
        else:
            self._until_eof = True
            self._keep_alive = False

    def _make_head(self, parser: httptools.HttpResponseParser, status: int) -> ResponseHead:
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self._raw_headers:
            headers.add(_text(name), _text(value))
        length_text = headers.get("Content-Length")
        transfer = headers.get("Transfer-Encoding", "")
        return ResponseHead(
            status=status,
            reason=_text(self._reason),
            version=parser.get_http_version(),
            headers=CIMultiDictProxy(headers),
            content_length=int(length_text) if length_text is not None else None,
            chunked="chunked" in transfer.lower(),
            keep_alive=parser.should_keep_alive(),
        )

    def on_body(self, body: bytes) -> None:
        if self._raw_left:
            self._raw_left -= len(body)
        self._push(body)

    def on_message_complete(self) -> None:
        if self._head is not None and not self._complete:
            self._raw_left = 0
            self._message_done()

    # --- the exchange ----------------------------------------------------------------

    def begin(self, *, head_only: bool, read_timeout: float | None) -> None:
        """Start an exchange: a fresh parser, nothing buffered."""
        self._reset(head_only, read_timeout)
        self._parser = httptools.HttpResponseParser(self)
        self._parser.set_dangerous_leniencies(
            # What aiohttp's client accepted from legacy servers, kept: bare LF line ends
            # and spaces after a chunk size. Header values stay strictly checked.
            lenient_optional_cr_before_lf=True,
            lenient_spaces_after_chunk_size=True,
        )
        self._fault = None
        self._active = True

    def start(
        self, head: bytes, body: Body, *, chunked: bool, expect_continue: bool = False
    ) -> None:
        """Write the request head (with a small body at once); a streamed body follows in
        a task, so an upstream that answers while still reading it (an echo) is served
        both ways at once, as aiohttp's client did."""
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
        """Wait for ``100 Continue`` (or for nothing much); False if answered already."""
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
            raise Disconnected(
                "upstream closed the connection", nothing_received=self._received == 0
            )
        return transport

    async def _drained(self) -> None:
        self._drain = self.loop.create_future()
        await self._drain
        self._writable()

    async def response_head(self) -> ResponseHead:
        """The final response head (1xx skipped), within the idle-read timeout."""
        while self._head is None:
            if self._error is not None:
                raise self._error
            await self._wait()
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
            self._reading_paused = False
            if self.transport is not None and not self.closed:
                self.transport.resume_reading()
        return piece

    async def read_all(self) -> bytes:
        pieces: list[bytes] = []
        while piece := await self.read_chunk():
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def finish(self) -> bool:
        """End the exchange; whether the connection may serve another one."""
        reusable = (
            self._active
            and self._complete
            and self._keep_alive
            and self._sent_all
            and self._error is None
            and not self.closed
        )
        self._active = False
        self._parser = None
        self._cancel_timer()
        sender, self._sender = self._sender, None
        if sender is not None and not sender.done():
            sender.cancel()  # the client's body is no longer wanted
        self._body.clear()
        if reusable:
            self.served += 1
            if self._reading_paused and self.transport is not None:
                self.transport.resume_reading()
        return reusable

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    # --- internals -------------------------------------------------------------------

    def _push(self, data: bytes) -> None:
        self._body.append(data)
        self._buffered += len(data)
        if self._buffered > READ_HIGH and not self._reading_paused:
            self._reading_paused = True
            if self.transport is not None:
                self.transport.pause_reading()
        self._wake()

    def _message_done(self) -> None:
        self._complete = True
        self._wake()

    def _fail(self, error: Exception) -> None:
        self._keep_alive = False
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
        """The idle-read timer: fires at most once per timeout while an answer is due."""
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
