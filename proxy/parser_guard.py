"""aiohttp's request parser, kept from losing what is pipelined after an unswitched Upgrade
(and noting whether a connection ever sent a byte past ASCII, so that only then are
its header bytes checked for UTF-8 by :func:`proxy.refusals.head_refusal`).

llhttp pauses after any request carrying ``Connection: upgrade`` + ``Upgrade``. For
``websocket`` aiohttp switches protocols and keeps the bytes after the request as
the upgraded stream; for any other protocol (``h2c``, ``tcp``…) it answers the
request over HTTP/1.1, as it should, but aiohttp 3.14's C parser drops whatever
followed that request in the same read: the next pipelined request is lost.

:class:`UpgradeSafeParser` wraps the parser and, only while a read may hold such a
request (it mentions ``upgrade``), feeds it in pieces that never run past the end of
a request: up to each ``\\r\\n\\r\\n`` (the end of a head, or of a chunked body), and
exactly the ``Content-Length`` of an unswitched upgrade request's body. Splitting a
read is always safe for a streaming parser; every other read is passed through as is,
and reads of a request body are not even scanned (an upgrade request pipelined in
the same read right behind a body is the one case left as aiohttp has it).

Reliance on aiohttp internals: the parser object of ``RequestHandler`` (its private
``_parser``) and the ``(messages, upgraded, tail)`` result of ``feed_data``, pinned
to aiohttp 3.14; ``tests/hardening/test_parser_guard.py`` checks it over sockets.
"""

from __future__ import annotations

from typing import Any

from aiohttp.streams import EMPTY_PAYLOAD

# "pgrade" / "PGRADE" find Upgrade, upgrade and UPGRADE (a header name or token);
# the last bytes of the previous read catch one split across two reads.
_KEEP = len("pgrade")
# The last byte of a read that may end in the start of a mark ("p" … "pgrad", any case).
_MARK_STARTS = frozenset(bytes([byte]) for byte in b"pgradPGRAD")


def _has_mark(data: bytes) -> bool:
    return b"pgrade" in data or b"PGRADE" in data


class UpgradeSafeParser:
    """Delegates to aiohttp's request parser; see the module docstring."""

    __slots__ = (
        "_armed",
        "_body_left",
        "_chunked_upgrade",
        "_inner",
        "_last",
        "_payload",
        "non_ascii",
    )

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._armed = False  # the head being received mentions upgrade
        self._body_left = 0  # body bytes of an unswitched upgrade request still to feed
        self._last = b""  # the end of the previous read: a mark or a head end may span two
        self._payload: Any = None  # the body of the last request parsed
        self._chunked_upgrade: Any = None  # the chunked body of an unswitched upgrade
        self.non_ascii = False  # a byte past ASCII arrived: the edge reads header bytes then

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def message_consumed(self) -> None:
        # Called once per request: spelled out, as __getattr__ costs a failed lookup.
        self._inner.message_consumed()

    def feed_data(self, data: bytes) -> tuple[Any, bool, bytes]:
        if not self.non_ascii and not data.isascii():
            self.non_ascii = True
        chunked = self._chunked_upgrade
        if self._body_left or self._armed or (chunked is not None and not chunked.is_eof()):
            return self._feed_in_pieces(data)
        payload = self._payload
        between_requests = payload is None or payload is EMPTY_PAYLOAD or payload.is_eof()
        # (_has_mark spelled out: this runs for every read. A mark can only span two
        # reads if the previous one ended in the start of one.)
        if between_requests and (
            b"pgrade" in data
            or b"PGRADE" in data
            or (self._last[-1:] in _MARK_STARTS and _has_mark(self._last + data[:_KEEP]))
        ):
            return self._feed_in_pieces(data)
        # else: a request body in progress, not scanned (uploads keep their speed); an
        # upgrade request pipelined right behind it in the same read is left as it was.
        self._last = data[-_KEEP:] if len(data) >= _KEEP else (self._last + data)[-_KEEP:]
        result = self._inner.feed_data(data)
        if result[0]:
            self._payload = result[0][-1][1]
        return result  # type: ignore[no-any-return]

    def _feed_in_pieces(self, data: bytes) -> tuple[Any, bool, bytes]:
        """Feed ``data`` in pieces that end at every head end (``\\r\\n\\r\\n``, also one
        begun in the previous read) and at the end of an unswitched upgrade's body."""
        lead = self._last[-3:]
        buf = lead + data
        pos = region = len(lead)  # next byte to feed; start of the head being received
        messages: list[Any] = []
        while pos < len(buf):
            if self._body_left:
                cut = min(pos + self._body_left, len(buf))
                self._body_left -= cut - pos
            else:
                end = buf.find(b"\r\n\r\n", max(pos - 3, 0))
                cut = len(buf) if end == -1 else end + 4
            got, upgraded, tail = self._inner.feed_data(buf[pos:cut])
            messages.extend(got)
            if upgraded:  # a WebSocket: the rest is the upgraded stream
                self._armed = False
                return messages, True, tail + buf[cut:]
            if cut < len(buf) or buf.endswith(b"\r\n\r\n"):
                region = cut  # a head (or body) ended here: what follows is new
            if got:
                self._payload = got[-1][1]
                message = got[-1][0]
                if message.upgrade and message.chunked:
                    self._chunked_upgrade = got[-1][1]  # fed in pieces to its last chunk
                elif message.upgrade:
                    # Its body (if any) ends the request: feed exactly that much.
                    self._body_left = int(message.headers.get("Content-Length", "0") or 0)
            pos = cut
        # Still inside a head that mentions upgrade (a mark may span the two reads)?
        same_head = region == len(lead)
        seen = (self._last if same_head else b"") + buf[region:]
        self._armed = (self._armed and same_head) or _has_mark(seen)
        self._remember_end(data)
        return messages, False, b""

    def _remember_end(self, data: bytes) -> None:
        """Keep the stream's last bytes (not only this read's: a read may be tiny)."""
        self._last = data[-_KEEP:] if len(data) >= _KEEP else (self._last + data)[-_KEEP:]
