"""Reading the policy file so that no file can freeze or wedge the proxy.

A policy path may point anywhere: a FIFO nobody writes (``open`` blocks for ever),
``/dev/zero`` (endless bytes), a directory, or a file on a hung network mount. So:
only a regular file is read (checked on the opened descriptor, after following
symlinks, so a ConfigMap's ``..data`` symlink still works), at most
:data:`MAX_POLICY_BYTES`, and the running proxy reads it on a thread of its own
within :data:`READ_TIMEOUT` seconds. A read that overruns is abandoned (the thread
is a daemon: it never holds up shutdown) and, while it stays stuck, later reads are
refused at once instead of piling up threads. Every failure is a
:class:`~proxy.drafts.PolicyError` naming the path: ``path:0 (file): ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from .drafts import PolicyError

# 8 MiB: twice a policy of 1,000 routes with 100 origins each (4.4 MB, tests/ops/
# test_reload_big.py), a thousand times a typical one; what is read is held in memory.
MAX_POLICY_BYTES = 8 * 1024 * 1024
READ_TIMEOUT = 5.0  # seconds for open + read; a local file takes microseconds

Reader = Callable[[Path], bytes]

log = logging.getLogger("cors_edge")


class PolicySource(Protocol):
    """Where the running proxy gets its policy bytes: a file, or the command line."""

    @property
    def source(self) -> str: ...  # names the policy in errors and logs

    def read_blocking(self) -> bytes: ...

    async def read(self) -> bytes: ...


def _refused(path: Path, message: str) -> PolicyError:
    return PolicyError(str(path), 0, "(file)", message)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def read_policy_bytes(path: Path, limit: int = MAX_POLICY_BYTES) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or raise PolicyError."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused below).
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as error:
        raise _refused(path, f"cannot read: {error.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise _refused(path, f"cannot read: {_kind(mode)}; the policy must be a regular file")
        chunks: list[bytes] = []
        total = 0
        while total <= limit:  # the size may change while reading: count what arrives
            chunk = os.read(fd, min(1 << 16, limit + 1 - total))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            total += len(chunk)
        raise _refused(path, f"larger than the {limit} byte limit for a policy file")
    except OSError as error:
        raise _refused(path, f"cannot read: {error.strerror}") from None
    finally:
        os.close(fd)


class BoundedReader:
    """Reads the policy file on a daemon thread, within a timeout, never piling up."""

    def __init__(
        self, path: Path, timeout: float = READ_TIMEOUT, read: Reader = read_policy_bytes
    ) -> None:
        self.path = path
        self.source = str(path)
        self.timeout = timeout
        self._read = read
        self._stuck: threading.Thread | None = None  # a read that overran its timeout

    async def read(self) -> bytes:
        self._refuse_while_stuck()
        loop = asyncio.get_running_loop()
        result: asyncio.Future[bytes] = loop.create_future()
        thread = threading.Thread(
            target=self._run, args=(loop, result), name="cors-edge policy read", daemon=True
        )
        thread.start()
        try:
            return await asyncio.wait_for(result, self.timeout)
        except TimeoutError:
            self._stuck = thread
            raise self._overran() from None

    def read_blocking(self) -> bytes:
        """The same bounded read, for start-up (before the event loop serves anything)."""
        self._refuse_while_stuck()
        outcome: list[bytes | BaseException] = []
        thread = threading.Thread(
            target=lambda: outcome.append(self._attempt()),
            name="cors-edge policy read",
            daemon=True,
        )
        thread.start()
        thread.join(self.timeout)
        if not outcome:
            self._stuck = thread
            raise self._overran()
        value = outcome[0]
        if isinstance(value, BaseException):
            raise value
        return value

    def _attempt(self) -> bytes | BaseException:
        try:
            return self._read(self.path)
        except BaseException as error:  # handed to the waiting side
            return error

    def _run(self, loop: asyncio.AbstractEventLoop, result: asyncio.Future[bytes]) -> None:
        value = self._attempt()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(_settle, result, value)

    def _refuse_while_stuck(self) -> None:
        if self._stuck is not None and self._stuck.is_alive():
            raise _refused(
                self.path,
                "cannot read: an earlier read has still not returned (a hung mount?); "
                "not starting another until it does",
            )
        self._stuck = None

    def _overran(self) -> PolicyError:
        return _refused(
            self.path, f"cannot read: no answer within {self.timeout:g} s (a hung mount?)"
        )


def _settle(result: asyncio.Future[bytes], value: bytes | BaseException) -> None:
    if result.done():  # timed out and abandoned
        return
    if isinstance(value, BaseException):
        result.set_exception(value)
    else:
        result.set_result(value)


class FixedPolicy:
    """A policy given on the command line (``serve --allow-origin``): no file to re-read."""

    def __init__(self, text: str, source: str) -> None:
        self._raw = text.encode()
        self.source = source

    def read_blocking(self) -> bytes:
        return self._raw

    async def read(self) -> bytes:
        log.info("no policy file to re-read (the policy comes from --allow-origin); keeping it")
        return self._raw
