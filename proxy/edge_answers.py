"""Answers cors-edge gives itself: preflights and refusals, and error answers.

:func:`edge_answer` answers a decision taken at the edge (204, 403, 400);
:func:`error_answer` is the one builder of the JSON errors cors-edge makes itself
(:func:`refusal_answer` the same for a refused request head, in HTTP/1.1 and closing)
(413, 408, 502, 504, parser refusals, WebSocket refusals). Both take their CORS
headers and ``Vary`` from :meth:`~proxy.cors.Verdict.answer_headers`, and say
``Server: cors-edge``.

A preflight is the hottest request an edge serves, and its answer is a handful of
fixed header lines. Building it with :class:`aiohttp.web.Response` (a header
multidict, a prepare pass, serialisation) costs more than deciding it, so for
HTTP/1.1 the answer is assembled as one bytes object and written in one call.

Like aiohttp's own responses, an answer waits for the client's socket to drain
before the next request is taken (flow control: memory stays bounded however many
requests a client pipelines without reading). An answer to ``HEAD`` has no body.

Reliance on aiohttp internals (undocumented behaviour, not private names):
:class:`RawAnswer` (also the small relayed answers of :func:`proxy.relayed.small_answer`)
stands in for a ``web.StreamResponse`` although it is none, because
aiohttp 3.14's connection handler only asks a handler's result for ``prepare()``,
``write_eof()``, ``keep_alive`` (and ``status`` for logging, which is off here).
``tests/test_aiohttp_contract.py`` pins that, and ``tests/unit/test_edge_answers.py``
holds the bytes to the wire format of ``web.Response``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import cast

from aiohttp import HttpVersion11, web

from .cors import Decision, Verdict

_EDGE_MESSAGES = {
    Decision.PREFLIGHT_REFUSED: "CORS preflight refused by cors-edge",
    Decision.BLOCKED: "cross-origin request refused by cors-edge: origin not allowed",
    Decision.BAD_PATH: "ambiguous request path refused by cors-edge",
}
_REASONS = {204: "No Content", 400: "Bad Request", 403: "Forbidden"}
_BODIES = {
    decision: json.dumps({"error": message}).encode()
    for decision, message in _EDGE_MESSAGES.items()
}
SERVER = "cors-edge"


class HttpDate:
    """The ``Date`` header line, formatted once per second."""

    second = -1
    line = b""

    @classmethod
    def current(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second = now
            cls.line = f"Date: {formatdate(now, usegmt=True)}\r\n".encode()
        return cls.line


class RawAnswer:
    """A complete HTTP/1.1 response, written with one transport call."""

    __slots__ = ("_data", "keep_alive", "status")

    def __init__(self, status: int, data: bytes, keep_alive: bool) -> None:
        self.status = status
        self._data = data
        self.keep_alive = keep_alive

    async def prepare(self, request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away before its answer")
        transport.write(self._data)
        # A client that pipelines without reading must not make the edge hold its
        # answers: wait until the transport drains below its high-water mark. The
        # next request is not taken meanwhile, so aiohttp's queue of pipelined
        # requests fills and it stops reading from the socket (flow control).
        await request.writer.drain()

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def edge_answer(verdict: Verdict, request: web.BaseRequest) -> web.StreamResponse:
    """The answer for a decision made at the edge (204, 400 or 403)."""
    if request.version != HttpVersion11:
        status = verdict.status or 400
        body = b"" if status == 204 else _body(verdict)
        response = _aiohttp_answer(verdict, status, body)
        if unread_body(request):
            response.force_close()
        return response
    keep_alive = request.keep_alive and not unread_body(request)
    answer = prepared_answer(verdict, head_only=request.method == "HEAD", keep_alive=keep_alive)
    if answer is None:
        raise ValueError("edge_answer() is for verdicts answered at the edge")
    # aiohttp's handler only uses the parts RawAnswer has (see the module docstring).
    return cast(web.StreamResponse, RawAnswer(answer.status, answer.data(), keep_alive))


@dataclass(frozen=True, slots=True)
class PreparedAnswer:
    """A verdict's whole HTTP/1.1 answer but its ``Date`` line, and what a request
    record says of it (see :meth:`proxy.server.EdgeServer.answer_early`)."""

    verdict: Verdict  # kept, so that its id stays its own while cached
    before_date: bytes
    after_date: bytes
    status: int
    decision: str
    route: str | None

    def data(self) -> bytes:
        return b"".join((self.before_date, HttpDate.current(), self.after_date))


# (id(verdict), head_only, keep_alive) -> (the verdict, kept so that its id stays its
# own while cached; its answer, or None when it is not the edge's).
_ANSWERS: dict[tuple[int, bool, bool], tuple[Verdict, PreparedAnswer | None]] = {}
_ANSWERS_KEPT = 4096


def prepared_answer(
    verdict: Verdict, *, head_only: bool, keep_alive: bool = True
) -> PreparedAnswer | None:
    """The answer for a verdict answered at the edge, ``None`` for one that is forwarded
    (shadow routes forward everything). Built once per verdict: verdicts come from the
    snapshot's cache, so a site's few preflights reuse a few answers."""
    key = (id(verdict), head_only, keep_alive)
    known = _ANSWERS.get(key)
    if known is None or known[0] is not verdict:
        if len(_ANSWERS) >= _ANSWERS_KEPT:
            _ANSWERS.clear()  # a new snapshot's verdicts: start over, bounded
        known = _ANSWERS[key] = (verdict, _prepare_answer(verdict, head_only, keep_alive))
    return known[1]


def _prepare_answer(verdict: Verdict, head_only: bool, keep_alive: bool) -> PreparedAnswer | None:
    route = verdict.route
    if not verdict.answered_at_edge or (route is not None and route.shadow):
        return None
    before_date, after_date = _answer_parts(verdict, head_only, keep_alive)
    return PreparedAnswer(
        verdict,
        before_date,
        after_date,
        verdict.status or 400,
        verdict.decision.value,
        route.name if route is not None else None,
    )


def _answer_parts(verdict: Verdict, head_only: bool, keep_alive: bool) -> tuple[bytes, bytes]:
    status = verdict.status or 400
    body = b"" if status == 204 else _body(verdict)
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in verdict.answer_headers())
    if body:
        lines.append(
            f"Content-Type: application/json; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
        )
        if head_only:
            # The head a GET would get, never a body (RFC 9112 §6.3): a keep-alive
            # client would read it as the next response.
            body = b""
    if not keep_alive:
        lines.append("Connection: close\r\n")
    return "".join(lines).encode("latin-1"), b"Server: cors-edge\r\n\r\n" + body


def _body(verdict: Verdict) -> bytes:
    return _BODIES.get(verdict.decision, b'{"error": "refused"}')


def unread_body(request: web.BaseRequest) -> bool:
    """Whether the request still has body bytes to come that the edge will never read.

    A refused request's body is not wanted, and a client that sent ``Expect:
    100-continue`` will not send it at all (no ``100`` comes). Kept open, the connection
    would wait up to aiohttp's lingering time to discard it (and hold up a drain for
    as long); closed after the answer, as RFC 9110 §10.1.1 allows, it waits for nothing.
    """
    return request.body_exists and not request.content.is_eof()


def _aiohttp_answer(verdict: Verdict, status: int, body: bytes) -> web.Response:
    headers = verdict.answer_headers()
    headers.append(("Server", SERVER))
    if status == 204:
        return web.Response(status=204, headers=headers)
    headers.append(("Content-Type", "application/json; charset=utf-8"))
    return web.Response(status=status, body=body, headers=headers)


def error_answer(
    verdict: Verdict | None, status: int, message: str, *, head_only: bool = False
) -> web.Response:
    """An error cors-edge makes itself, readable by a page the route allows.

    ``verdict`` is ``None`` when no route can be told (a malformed request): such an
    answer grants nothing. ``head_only``: the answer to a ``HEAD`` aiohttp cannot
    see as one (a refused head), sent without its body (RFC 9112 §6.3)."""
    headers = _error_headers(verdict)
    body = _error_body(status, message)
    if head_only:
        headers.append(("Content-Length", str(len(body))))
        return web.Response(status=status, headers=headers)
    return web.Response(status=status, body=body, headers=headers)


def refusal_answer(
    verdict: Verdict | None, status: int, message: str, *, head_only: bool = False
) -> web.StreamResponse:
    """:func:`error_answer`'s answer to a request head the edge refused, then the
    connection closes. Its status line says HTTP/1.1 whatever the refused head said:
    "A server SHOULD send a response version equal to the highest version to which the
    server is conformant" (RFC 9110 §2.5), and a refused head's version (the placeholder
    aiohttp hands over says 1.0; an HTTP/0.9 line has none) is no version to answer in."""
    body = _error_body(status, message)
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in _error_headers(verdict))
    lines.append(f"Content-Length: {len(body)}\r\nConnection: close\r\n")
    head = "".join(lines).encode("latin-1") + HttpDate.current() + b"\r\n"
    answer = RawAnswer(status, head if head_only else head + body, keep_alive=False)
    # aiohttp's handler only uses the parts RawAnswer has (see the module docstring).
    return cast(web.StreamResponse, answer)


def _error_headers(verdict: Verdict | None) -> list[tuple[str, str]]:
    """An error answer's headers: what the verdict grants (nothing when no route can be
    told), then its own ``Content-Type`` and ``Server``."""
    headers = verdict.answer_headers() if verdict is not None else []
    headers.append(("Content-Type", "application/json"))
    headers.append(("Server", SERVER))
    return headers


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message, "status": status}).encode()
