"""The control channel between the parent and its workers (``serve --workers N``).

One ``socketpair`` per worker, inherited by the worker as a file descriptor, carrying
JSON lines. The parent asks, the worker answers with the same ``id``; the worker also
announces, without an ``id``, when it is ready to serve.

Reload is two-phase so that every worker moves to the same policy generation or none
does: ``prepare`` (read and compile the parent's snapshot of the file, keep it aside)
on every worker, then ``commit`` (swap it in: one assignment, which cannot fail) on
every worker, or ``abort`` on every worker if any one could not prepare.

    parent -> worker  {"id": 7, "op": "prepare", "generation": 3, "snapshot": "/tmp/…/3.yaml"}
    worker -> parent  {"id": 7, "ok": true}            or {"id": 7, "ok": false, "error": "…"}
    parent -> worker  {"id": 8, "op": "commit", "generation": 3}
    parent -> worker  {"id": 9, "op": "state"}
    worker -> parent  {"id": 9, "ok": true, "ready": true, "generation": 3, "in_flight": 2}
    worker -> parent  {"event": "ready", "generation": 3}
    parent -> worker  {"id": 10, "op": "stop"}         drain and exit, as on SIGTERM
    parent -> worker  {"id": 11, "op": "stop", "hurry": true}   cut the drain short

Stopping goes over the channel, not as a signal: when parent and workers are signalled
together (systemd's KillMode=control-group, ``kill -TERM -PGID``), a relayed SIGTERM
would be each worker's second signal, which cuts its drain short.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

log = logging.getLogger("cors_edge")

Message = dict[str, Any]
_LINE_LIMIT = 1024 * 1024


class ChannelClosed(ConnectionError):
    """The other end of the control channel went away."""


async def _open(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock.setblocking(False)
    return await asyncio.open_unix_connection(sock=sock, limit=_LINE_LIMIT)


def _encode(message: Message) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


class ParentChannel:
    """The parent's end for one worker: requests with replies, and the worker's events."""

    def __init__(self, on_event: Callable[[Message], None]) -> None:
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Message]] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def attach(self, sock: socket.socket) -> None:
        reader, self._writer = await _open(sock)
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                waiter = self._waiting.pop(message.get("id", 0), None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(message)
                elif "event" in message:
                    self._on_event(message)
        except (ConnectionError, ValueError) as error:
            log.debug("control channel read ended: %r", error)
        finally:
            for waiter in self._waiting.values():
                if not waiter.done():
                    waiter.set_exception(ChannelClosed("worker control channel closed"))
            self._waiting.clear()

    async def request(self, message: Message, timeout: float) -> Message:
        """Send one request and wait for its reply; ChannelClosed or TimeoutError."""
        if self._writer is None or self._writer.is_closing():
            raise ChannelClosed("worker control channel closed")
        ident = next(self._ids)
        waiter: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = waiter
        try:
            self._writer.write(_encode({**message, "id": ident}))
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiting.pop(ident, None)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


async def ask_to_stop(
    channel: ParentChannel | None,
    process: asyncio.subprocess.Process | None,
    *,
    hurry: bool,
    timeout: float,
) -> None:
    """Ask one worker to drain (``hurry``: cut it short), SIGTERM when it cannot hear."""
    if process is None or process.returncode is not None:
        return
    try:
        if channel is None:
            raise ChannelClosed("no control channel")
        await channel.request({"op": "stop", "hurry": hurry}, timeout)
    except (ChannelClosed, TimeoutError):
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)


class WorkerSide(Protocol):
    """What a worker's service offers the parent (see :mod:`proxy.lifecycle`)."""

    async def prepare(self, generation: int, snapshot: str) -> None: ...

    def commit(self, generation: int) -> None: ...

    def abort(self, generation: int) -> None: ...

    def state(self) -> Message: ...

    def parent_stop(self, hurry: bool) -> None: ...


class WorkerChannel:
    """The worker's end: answers the parent's requests, announces readiness."""

    def __init__(self, service: WorkerSide) -> None:
        self._service = service
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self, fd: int) -> None:
        self._reader, self._writer = await _open(socket.socket(fileno=fd))

    async def serve(self, on_lost: Callable[[], None]) -> None:
        """Answer the parent until it closes the channel, then call ``on_lost``: a
        worker whose parent is gone must not keep serving unsupervised."""
        assert self._reader is not None and self._writer is not None, "open() first"
        reader = self._reader
        try:
            while line := await reader.readline():
                message = json.loads(line)
                reply = await self._answer(message)
                self._writer.write(_encode({"id": message.get("id"), **reply}))
        except (ConnectionError, ValueError) as error:
            log.debug("control channel ended: %r", error)
        # Not on cancellation: that is the worker stopping on its own.
        on_lost()

    async def _answer(self, message: Message) -> Message:
        op = message.get("op")
        handlers: dict[str, Callable[[], Awaitable[Message]]] = {
            "prepare": lambda: self._prepare(message),
            "commit": lambda: self._simple(self._service.commit, message),
            "abort": lambda: self._simple(self._service.abort, message),
            "state": self._state,
            "stop": lambda: self._stop(message),
        }
        handler = handlers.get(str(op))
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r}"}
        return await handler()

    async def _prepare(self, message: Message) -> Message:
        try:
            await self._service.prepare(int(message["generation"]), str(message["snapshot"]))
        except Exception as error:
            return {"ok": False, "error": str(error)}
        return {"ok": True}

    async def _simple(self, action: Callable[[int], None], message: Message) -> Message:
        action(int(message["generation"]))
        return {"ok": True}

    async def _state(self) -> Message:
        return {"ok": True, **self._service.state()}

    async def _stop(self, message: Message) -> Message:
        self._service.parent_stop(bool(message.get("hurry")))
        return {"ok": True}

    def announce_ready(self, generation: int) -> None:
        if self._writer is not None and not self._writer.is_closing():
            self._writer.write(_encode({"event": "ready", "generation": generation}))
