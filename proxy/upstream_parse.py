"""Reading one upstream response off the wire: llhttp (httptools) for the head and the
chunks, our own count for a ``Content-Length`` body.

The head is parsed by llhttp within :class:`HeadLimits` (one line, and the whole head
with any 1xx before it; llhttp has no limits of its own). Once the head says
``Content-Length``, the body bypasses the parser: every later read is handed on as it
is, no copy. Chunked bodies go through llhttp (extensions and trailers are parsed and
dropped, as aiohttp's client did); a body framed by neither ends when the connection does.
1xx answers are skipped (a ``100 Continue`` is signalled), a ``101`` nobody asked for
is refused, a ``HEAD`` answer ends with its head.

Why httptools and not aiohttp's exported parser: ``benchmarks/parserbench.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from .upstream_errors import BodyIncomplete, Disconnected, HeadersTooLarge, ProtocolFault

_STATUS_LINE = len("HTTP/1.1 200 \r\n")


@dataclass(frozen=True, slots=True)
class HeadLimits:
    """Bounds on a response head: one header line, and the whole head with any 1xx."""

    max_line: int = 16 * 1024
    max_total: int = 64 * 1024


class ResponseHead:
    """A final response head, as the upstream sent it (names keep their spelling)."""

    # A plain slotted class: built once per request, a frozen dataclass costs more.
    __slots__ = (
        "chunked",
        "content_length",
        "headers",
        "keep_alive",
        "reason",
        "status",
        "version",
    )

    def __init__(
        self,
        status: int,
        reason: str,
        version: str,
        headers: CIMultiDictProxy[str],
        content_length: int | None,
        chunked: bool,
        keep_alive: bool,
    ) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers
        self.content_length = content_length
        self.chunked = chunked
        self.keep_alive = keep_alive


class ResponseSink(Protocol):
    """Where a parsed response goes (the connection)."""

    def head_received(self, head: ResponseHead) -> None: ...
    def body_received(self, data: bytes) -> None: ...
    def message_complete(self) -> None: ...
    def continue_received(self) -> None: ...


class _StopParsing(Exception):
    """Raised from a parser callback: the rest of the bytes are not the parser's to read."""


_UTF8, _ESC = "utf-8", "surrogateescape"


def _text(raw: bytes) -> str:
    return raw.decode(_UTF8, _ESC)


class ResponseParser:
    """One response: fed the bytes read, tells the sink what they make."""

    def __init__(self, sink: ResponseSink, limits: HeadLimits, *, head_only: bool) -> None:
        self._sink = sink
        self._limits = limits
        self._llhttp = httptools.HttpResponseParser(self)
        self._llhttp.set_dangerous_leniencies(
            # What aiohttp's client accepted from legacy servers, kept: bare LF line ends
            # and spaces after a chunk size. Header values stay strictly checked.
            lenient_optional_cr_before_lf=True,
            lenient_spaces_after_chunk_size=True,
        )
        self.reset(head_only)

    def reset(self, head_only: bool) -> None:
        """Ready for the next response on the same connection (see :attr:`reusable`)."""
        self._head_only = head_only
        self._reason = b""
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0
        self._fault: ProtocolFault | None = None
        self.received = 0  # bytes read while the head was incomplete
        self.head: ResponseHead | None = None
        self.complete = False
        self.keep_alive = False  # may the connection carry another exchange
        self._raw_left = 0  # bytes of a Content-Length body still due, read past llhttp
        self._until_eof = False
        # llhttp ended the message itself and read nothing past it: it can parse the next
        # one (building a parser costs more than parsing a small answer).
        self.reusable = False

    def feed(self, data: bytes) -> ProtocolFault | None:
        """Parse one read; a fault means the connection is out of step and must close."""
        left = self._raw_left
        if left:
            self._raw_body(data, left)
            return None
        if self._until_eof:
            self._sink.body_received(data)
            return None
        if self.head is None:
            if self.received > self._limits.max_total:
                return HeadersTooLarge(self._head_too_large())
            self.received += len(data)
        try:
            self._llhttp.feed_data(data)
        except httptools.HttpParserUpgrade:
            return ProtocolFault("upstream switched protocols unasked")
        except httptools.HttpParserCallbackError as error:
            fault, self._fault = self._fault, None
            if fault is None and isinstance(error.__context__, _StopParsing):
                # A HEAD answer ends with its head: reusable only if nothing followed it.
                self.keep_alive = self.keep_alive and data.endswith(b"\r\n\r\n")
                return None
            return fault or ProtocolFault(f"invalid response: {error}")
        except httptools.HttpParserError as error:
            return ProtocolFault(f"invalid response: {error}")
        return None

    def eof(self, clean: bool = True) -> BodyIncomplete | Disconnected | None:
        """The connection closed (``clean``: not reset): what that means for this response."""
        if self.complete:
            return None
        if self.head is None:
            return Disconnected(
                "upstream closed the connection before answering",
                nothing_received=self.received == 0,
            )
        if self._until_eof and clean:
            self.keep_alive = False
            self._done()  # a close-delimited body ends here (a reset cuts it short)
            return None
        return BodyIncomplete("upstream closed the connection mid-body")

    def _raw_body(self, data: bytes, left: int) -> None:
        size = len(data)
        if size < left:
            self._raw_left = left - size
            self._sink.body_received(data)
            return
        self._raw_left = 0
        if size > left:
            self.keep_alive = False  # more than Content-Length said: out of step
            data = data[:left]
        self._sink.body_received(data)
        self._done()

    def _done(self) -> None:
        self.complete = True
        self._sink.message_complete()

    # --- llhttp callbacks ------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self.keep_alive = self.reusable = False  # a second message where one was asked for
            raise _StopParsing
        self._raw_headers = []

    def on_status(self, reason: bytes) -> None:
        self._reason = reason
        self._count(len(reason) + _STATUS_LINE)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.head is not None:
            return  # a trailer: parsed, not relayed
        line = len(name) + len(value) + 4
        self._head_size += line
        if line > self._limits.max_line or self._head_size > self._limits.max_total:
            self._refuse(HeadersTooLarge(self._too_large(name, line)))
        self._raw_headers.append((name, value))

    def _too_large(self, name: bytes, line: int) -> str:
        if line > self._limits.max_line:
            return (
                f"a response header line over {self._limits.max_line} bytes "
                f"(limits.max_upstream_header_line): {_text(name)!r} is {line} bytes"
            )
        return self._head_too_large()

    def _count(self, size: int) -> None:
        self._head_size += size
        if self._head_size > self._limits.max_total:
            self._refuse(HeadersTooLarge(self._head_too_large()))

    def _head_too_large(self) -> str:
        return (
            f"a response head over {self._limits.max_total} bytes "
            "(limits.max_upstream_header_bytes)"
        )

    def _refuse(self, fault: ProtocolFault) -> None:
        self._fault = fault
        raise fault

    def on_headers_complete(self) -> None:
        status = self._llhttp.get_status_code()
        if status < 200:
            if status == 100:  # 1xx are skipped, as aiohttp's client did
                self._sink.continue_received()
            return
        head = self._make_head(status)
        self.head = head
        self.keep_alive = head.keep_alive
        self._sink.head_received(head)
        if self._head_only:
            self._done()
            raise _StopParsing
        if status in (204, 304) or head.chunked:
            return  # llhttp knows these have no body, or reads the chunks
        if head.content_length is not None:
            self._raw_left = head.content_length  # this read's rest still comes via on_body
        else:
            self._until_eof = True
            self.keep_alive = False

    def _make_head(self, status: int) -> ResponseHead:
        # Decoded as aiohttp decoded them, so the relayed bytes are the upstream's own;
        # llhttp drops the whitespace before a value, not after it (RFC 9110 §5.5).
        headers: CIMultiDict[str] = CIMultiDict(
            [
                (name.decode(_UTF8, _ESC), value.rstrip(b" \t").decode(_UTF8, _ESC))
                for name, value in self._raw_headers
            ]
        )
        length_text = headers.get("Content-Length")
        transfer = headers.get("Transfer-Encoding")
        llhttp = self._llhttp
        return ResponseHead(
            status,
            self._reason.decode(_UTF8, _ESC),
            llhttp.get_http_version(),
            CIMultiDictProxy(headers),
            int(length_text) if length_text is not None else None,
            transfer is not None and "chunked" in transfer.lower(),
            llhttp.should_keep_alive(),
        )

    def on_body(self, body: bytes) -> None:
        if self._raw_left:
            self._raw_left -= len(body)
        self._sink.body_received(body)

    def on_message_complete(self) -> None:
        if self.head is not None and not self.complete:
            self._raw_left = 0
            self.reusable = True
            self._done()
