"""The request side of the upstream client: where the upstream is, and a request's head.

The head is written as aiohttp's client wrote it (the caller's headers in order, then
``Content-Length`` or ``Transfer-Encoding: chunked``; ``Host`` first when the client
sent none), so the upstream sees the same bytes; a streamed body keeps the client's
``Content-Length``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

from .upstream_conn import Body

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
# Methods aiohttp sent without a body and without ``Content-Length: 0``.
_NO_LENGTH = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT"})


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """Where the upstream listens: a TCP host and port, or a UNIX socket path."""

    host: str
    port: int
    unix_path: str | None = None

    @property
    def authority(self) -> str:
        """What aiohttp's client sent as ``Host`` for this upstream."""
        if self.unix_path is not None:
            return "upstream"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == 80 else f"{host}:{self.port}"

    @property
    def literal(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @classmethod
    def parse(cls, text: str) -> UpstreamTarget:
        if text.startswith("unix:"):
            return cls("", 0, text[len("unix:") :])
        url = URL(text)
        return cls((url.host or "").strip("[]"), url.port or 80)


def request_head(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: Body,
    *,
    expect: bool,
    authority: str = "",
) -> tuple[bytes, bool]:
    """The request head's bytes, and whether the body goes chunked. Without a ``Host``
    of the client's, the upstream's ``authority`` is sent (HTTP/1.1 requires one)."""
    lines = [f"{method} {target} HTTP/1.1\r\n"]
    has_length = has_host = False
    for name, value in headers:
        lower = name.lower()
        if lower == "content-length":
            has_length = True
        elif lower == "host":
            has_host = True
        lines.append(f"{name}: {value}\r\n")
    if not has_host and authority:
        lines.insert(1, f"Host: {authority}\r\n")
    chunked = False
    if body is None:
        if method not in _NO_LENGTH and not has_length:
            lines.append("Content-Length: 0\r\n")
    elif isinstance(body, bytes):
        if not has_length:
            lines.append(f"Content-Length: {len(body)}\r\n")
    elif not has_length:
        chunked = True
        lines.append("Transfer-Encoding: chunked\r\n")
    if expect:
        lines.append("Expect: 100-continue\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError("a CR or LF inside a request header or the request line")
    return text.encode("utf-8", "surrogateescape"), chunked
