"""A minimal blocking HTTP/1.1 client for bulk transfers and idle connections.

Streaming a gigabyte through a Python client library would measure the client; this
one sends from one preallocated buffer and discards into another, so nearly all the
work is the kernel's and the servers'.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

BUFFER = 1 << 20


@dataclass(frozen=True)
class Transfer:
    """One bulk transfer: status, body bytes moved, wall time."""

    status: int
    nbytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.seconds / 1e6 if self.seconds > 0 else 0.0


def _head(method: str, path: str, host: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Reader:
    """Buffered reads from a socket with just enough HTTP/1.1 framing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.scratch = bytearray(BUFFER)

    def _fill(self) -> int:
        count = self.sock.recv_into(self.scratch)
        if count == 0:
            raise ConnectionError("connection closed mid-response")
        self.buffer += memoryview(self.scratch)[:count]
        return count

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def head(self) -> tuple[int, dict[str, str]]:
        status = int(self.line().split()[1])
        headers: dict[str, str] = {}
        while line := self.line():
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def skip(self, count: int) -> None:
        """Discard exactly ``count`` body bytes."""
        take = min(count, len(self.buffer))
        del self.buffer[:take]
        count -= take
        view = memoryview(self.scratch)
        while count > BUFFER:
            got = self.sock.recv_into(view)
            if got == 0:
                raise ConnectionError("connection closed mid-body")
            count -= got
        while count > 0:
            got = self.sock.recv_into(view[:count])
            if got == 0:
                raise ConnectionError("connection closed mid-body")
            count -= got

    def drain(self) -> None:
        while self.sock.recv_into(self.scratch):
            pass

    def body(self, headers: dict[str, str]) -> int:
        """Read and discard the body framed by ``headers``; return its length."""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            total = 0
            while size := int(self.line().split(b";")[0], 16):
                self.skip(size + 2)
                total += size
            while self.line():  # trailers
                pass
            return total
        if "content-length" in headers:
            length = int(headers["content-length"])
            self.skip(length)
            return length
        total = len(self.buffer)
        self.buffer.clear()
        while got := self.sock.recv_into(self.scratch):
            total += got
        return total


def download(host: str, port: int, path: str, headers: dict[str, str]) -> Transfer:
    """GET ``path`` and discard the body."""
    with socket.create_connection((host, port), timeout=120) as sock:
        started = time.perf_counter()
        sock.sendall(_head("GET", path, f"{host}:{port}", {**headers, "Connection": "close"}))
        reader = _Reader(sock)
        status, response_headers = reader.head()
        nbytes = reader.body(response_headers)
        return Transfer(status, nbytes, time.perf_counter() - started)


def upload(host: str, port: int, path: str, size: int, headers: dict[str, str]) -> Transfer:
    """POST ``size`` bytes (Content-Length framed) to ``path``."""
    chunk = bytes(range(256)) * (BUFFER // 256)
    view = memoryview(chunk)
    head = {
        **headers,
        "Content-Type": "application/octet-stream",
        "Content-Length": str(size),
        "Connection": "close",
    }
    with socket.create_connection((host, port), timeout=120) as sock:
        started = time.perf_counter()
        sock.sendall(_head("POST", path, f"{host}:{port}", head))
        remaining = size
        while remaining > 0:
            piece = view[: min(BUFFER, remaining)]
            sock.sendall(piece)
            remaining -= len(piece)
        reader = _Reader(sock)
        status, response_headers = reader.head()
        reader.body(response_headers)
        return Transfer(status, size, time.perf_counter() - started)


def open_idle(
    host: str, port: int, count: int, method: str, path: str, headers: dict[str, str]
) -> list[socket.socket]:
    """Open ``count`` keep-alive connections, make one request on each, leave them open."""
    request = _head(method, path, f"{host}:{port}", headers)
    opened: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection((host, port), timeout=10)
            opened.append(sock)
            sock.sendall(request)
            reader = _Reader(sock)
            _, response_headers = reader.head()
            reader.body({"content-length": "0", **response_headers})
    except BaseException:
        close_all(opened)
        raise
    return opened


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()
