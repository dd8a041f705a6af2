"""The responses an upstream answer is relayed in: aiohttp's, minus what it would invent;
:func:`small_answer` for a body read whole, and :func:`relay_stream`, which relays a
streamed body under ``timeouts.client_send``.

aiohttp completes every response head it sends: a ``Server: Python/… aiohttp/…``
banner when there is no ``Server``, and ``Content-Type: application/octet-stream``
when a body has none. For a relayed answer both are false statements about the
upstream's response (and the banner advertises the proxy's exact versions), so
:class:`RelayedResponse` and :class:`RelayedStreamResponse` send exactly the headers
they were given (plus ``Date`` when missing, which RFC 9110 §6.6.1 asks of a proxy).

A small answer to a plain HTTP/1.1 keep-alive request skips aiohttp's response
machinery (a header multidict, a prepare pass, its serialiser): its bytes are
assembled here and written in one call, as the edge's own answers are
(:class:`proxy.edge_answers.RawAnswer`).

Header bytes go on byte for byte. aiohttp's parser keeps bytes that are not UTF-8
(a Latin-1 ``filename="caf\\xe9.txt"``, legal obs-text) as surrogates, and its
serialiser silently drops those; a head holding any is serialised here instead,
with the bytes the upstream sent.

Reliance on aiohttp internals (aiohttp 3.14, pinned in ``pyproject.toml``): the
private ``StreamResponse._prepare_headers`` (where the head is completed; the
override takes back what it added) and ``_write_headers``, and the payload writer's
``_headers_buf`` (the serialised head waiting to go out). ``tests/hardening/
test_relayed.py`` checks the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from typing import cast

from aiohttp import HttpVersion11, hdrs, web
from multidict import CIMultiDict

from .edge_answers import HttpDate, RawAnswer, unread_body
from .forward import ForwardFailure, UpstreamResponse
from .records import ErrorKind, RequestError, RequestRecord

_INVENTED = (hdrs.SERVER, hdrs.CONTENT_TYPE)
# Control characters other than the CR LF the head is joined with (as aiohttp's own
# serialiser refuses them); a CR or LF inside a field shows in the counts instead.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def head_lines(status_line: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """The status line and header lines, each ending in CR LF, with every header byte
    as received (surrogates back to their bytes); no blank line yet."""
    lines = [status_line, *(f"{name}: {value}" for name, value in headers)]
    text = "\r\n".join(lines)
    breaks = len(lines) - 1
    if text.count("\r") != breaks or text.count("\n") != breaks or _CONTROL.search(text):
        raise ValueError("a relayed header holds a control character")
    return text.encode("utf-8", "surrogateescape") + b"\r\n"


def exact_head(status_line: str, headers: CIMultiDict[str]) -> bytes:
    """The whole head, byte for byte as received (see :func:`head_lines`)."""
    return head_lines(status_line, headers.items()) + b"\r\n"


class _AsRelayed(web.StreamResponse):
    _exact = False  # the head holds bytes past ASCII: serialised by exact_head()

    async def _prepare_headers(self) -> None:
        headers = self.headers
        missing = [name for name in _INVENTED if name not in headers]
        await super()._prepare_headers()
        for name in missing:
            headers.popall(name, None)
        self._exact = not (self.reason.isascii() and all(map(str.isascii, headers.values())))

    async def _write_headers(self) -> None:
        if not self._exact:
            return await super()._write_headers()
        request, writer = self._req, self._payload_writer
        assert request is not None and writer is not None
        version = request.version
        status_line = f"HTTP/{version[0]}.{version[1]} {self.status} {self.reason}"
        await writer.write_headers(status_line, self.headers)
        writer._headers_buf = exact_head(status_line, self.headers)  # type: ignore[attr-defined]
        if self._send_headers_immediately:
            writer.send_headers()


class RelayedStreamResponse(_AsRelayed):
    """A streamed relayed answer: its head is the upstream's, nothing invented."""


class RelayedResponse(_AsRelayed, web.Response):
    """A small relayed answer sent in one write: its head is the upstream's."""


def small_answer(
    request: web.BaseRequest,
    status: int,
    reason: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
) -> web.StreamResponse:
    """The answer relaying a body read whole. For a plain HTTP/1.1 keep-alive request
    (with a status that has a body) its bytes are assembled here: the headers as given,
    ``Date`` when missing, ``Content-Length`` the body's. Anything else is aiohttp's
    :class:`RelayedResponse`."""
    if (
        request.version != HttpVersion11
        or not request.keep_alive
        or status < 200
        or status in (204, 304)
        or unread_body(request)
    ):
        return RelayedResponse(
            status=status, reason=reason, headers=CIMultiDict(headers), body=body
        )
    kept = [(name, value) for name, value in headers if name.lower() != "content-length"]
    dated = any(name.lower() == "date" for name, _ in kept)
    data = b"".join(
        (
            head_lines(f"HTTP/1.1 {status} {reason}", kept),
            b"" if dated else HttpDate.current(),
            b"Content-Length: %d\r\n\r\n" % len(body),  # the body's own length
            body,
        )
    )
    # aiohttp's handler only uses the parts RawAnswer has (see proxy/edge_answers.py).
    return cast(web.StreamResponse, RawAnswer(status, data, keep_alive=True))


async def relay_stream(
    request: web.BaseRequest,
    upstream_response: UpstreamResponse,
    response: web.StreamResponse,
    record: RequestRecord,
    send_timeout: float,
) -> web.StreamResponse:
    """Send the head, then relay the body piece by piece. Each write may wait at most
    ``send_timeout`` (``timeouts.client_send``) for the client to read: a client that
    stops reading would otherwise hold the upstream worker writing to us for ever."""
    # One timeout, armed for each write and disarmed while the upstream is awaited: a
    # timeout() per chunk looked the loop up 3 times, each a getpid() on Python 3.11.
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time() + send_timeout) as deadline:
            await response.prepare(request)
            while True:
                deadline.reschedule(None)
                chunk = await upstream_response.next_chunk()
                if not chunk:
                    break
                deadline.reschedule(loop.time() + send_timeout)
                await response.write(chunk)
                record.bytes_sent += len(chunk)
            deadline.reschedule(loop.time() + send_timeout)
            await response.write_eof()
    except TimeoutError:
        record.error = RequestError(ErrorKind.CLIENT_SEND_TIMEOUT)
        _abort(request)
    except ForwardFailure as failure:
        # Headers are gone already; abort so the client sees a broken response,
        # never a truncated "success".
        record.error = failure.error
        _abort(request)
    except OSError:  # aiohttp's ClientConnectionResetError is one too
        # Only a write to the client fails this way: the user went away (closed the
        # tab, cancelled the download). Not an upstream failure.
        record.error = RequestError(ErrorKind.CLIENT_ABORTED)
        _abort(request)
    return response


def _abort(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()
