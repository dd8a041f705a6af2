"""Why the edge refuses a request head, and what can still be told of a refused one.

Pure: aiohttp's parser exceptions and message facts in, a status or a reason out.
:mod:`proxy.protocol` answers what the parser refused; :func:`head_refusal` covers
what the parser accepts but the edge never forwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from aiohttp import HttpVersion, HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from multidict import CIMultiDict, CIMultiDictProxy

_REQUEST_LINE = re.compile(rb"([A-Z]{1,20}) (/[\x21-\x7e]*) HTTP/1\.[01]\r\n")
_HEADER_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([\x20-\x7e]*?)[ \t]*\r\n")
_TOO_MANY_HEADERS = "Too many headers"


def refusal_status(exc: BaseException | None, head: bytes, max_line_size: int) -> int:
    """The status for a request the parser refused: 414, 431 or 400."""
    if isinstance(exc, LineTooLong):
        # The request line is the first line: if it is the long one, the target is.
        end = head.find(b"\n")
        return 414 if end == -1 or end > max_line_size else 431
    if isinstance(exc, HttpProcessingError) and _TOO_MANY_HEADERS in (exc.message or ""):
        return 431
    return 400


@dataclass(frozen=True, slots=True)
class RefusedHead:
    """What can be told of a refused request head: its request line and the complete,
    well-formed header lines before the one at fault."""

    method: str
    raw_path: str
    headers: CIMultiDictProxy[str]


def parse_refused_head(head: bytes) -> RefusedHead | None:
    """Read a refused head, or ``None`` when anything about it is unclear.

    Only a well-formed request line with an origin-form target counts; a folded
    header line means the last value is not what it seems, so nothing counts.
    """
    line = _REQUEST_LINE.match(head)
    if line is None:
        return None
    headers: CIMultiDict[str] = CIMultiDict()
    position = line.end()
    while True:
        header = _HEADER_LINE.match(head, position)
        if header is None:
            if head[position : position + 1] in (b" ", b"\t"):
                return None  # a folded line
            break
        headers.add(header[1].decode("ascii"), header[2].decode("ascii"))
        position = header.end()
    target = line[2].decode("ascii")
    return RefusedHead(line[1].decode("ascii"), target.split("?", 1)[0], CIMultiDictProxy(headers))


MESSAGES = {
    400: "malformed request refused by cors-edge",
    414: "request target too long",
    431: "request header fields too large or too many",
}

_HTTP_VERSIONS = frozenset({HttpVersion10, HttpVersion11})
# uri-host [":" port] (RFC 3986 §3.2.2): an IP literal or a reg-name, never userinfo.
_HOSTS_SEEN: dict[str, bool] = {}
_HOSTS_KEPT = 1024
_HOST = re.compile(r"(?:\[[0-9A-Za-z:.%~_-]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::[0-9]*)?")


def head_refusal(
    version: HttpVersion,
    headers: CIMultiDictProxy[str],
    raw_headers: Iterable[tuple[bytes, bytes]],
    non_ascii: bool,
) -> str | None:
    """Why a request the parser accepted is still refused with 400, or ``None``.
    (``non_ascii``: whether the connection ever sent a byte past ASCII; only then
    are the header bytes read.)

    - HTTP/0.9 (or any version but 1.0 and 1.1): llhttp reads ``GET /path\\r\\n``
      (say, a target with a CR LF injected) as an HTTP/0.9 request.
    - A ``Host`` that is not ``host[:port]`` (RFC 9110 §7.2): userinfo
      (``user@host``), a path, spaces; each hop may read those differently.
    - Header bytes that are not UTF-8 (obs-text such as Latin-1): the parser keeps
      them as surrogates that cannot go upstream unchanged, so they are refused
      rather than silently dropped or rewritten.
    """
    if version not in _HTTP_VERSIONS:
        return f"HTTP/{version.major}.{version.minor} request"
    host = headers.get("Host")
    if host is not None:
        valid = _HOSTS_SEEN.get(host)
        if valid is None:
            valid = _HOST.fullmatch(host) is not None
            if len(_HOSTS_SEEN) < _HOSTS_KEPT:  # hosts repeat: the check runs once each
                _HOSTS_SEEN[host] = valid
        if not valid:
            return "Host header that is not host[:port]"
    if non_ascii:
        for name, value in raw_headers:
            if not value.isascii():
                try:
                    value.decode("utf-8")
                except UnicodeDecodeError:
                    return f"{name.decode('ascii', 'replace')} header with bytes that are not UTF-8"
    return None
