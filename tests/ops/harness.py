"""Shared helpers for the operations tests: policy variants, a CORS traffic stream
that checks every answer against the policies that may be in force, and helpers
for the admin listener and Kubernetes-style ConfigMap volumes."""

from __future__ import annotations

import asyncio
import ctypes
import hashlib
import os
import re
import select
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from tests.support import Edge

ORIGIN_A = "http://a.test"
ORIGIN_B = "http://b.test"


@dataclass(frozen=True)
class Variant:
    """One /api/** policy: which origin it allows and its preflight Max-Age."""

    origin: str
    max_age: int
    revision: int = 0

    def text(self) -> str:
        return (
            f"# revision {self.revision}\n"
            "timeouts: {connect: 2, read: 5}\n"
            "routes:\n"
            "  - path: /api/**\n"
            f"    origins: [{self.origin}]\n"
            "    methods: [GET, POST]\n"
            f"    max_age: {self.max_age}\n"
        )

    def sha256(self) -> str:
        return hashlib.sha256(self.text().encode()).hexdigest()


# Same shape as Variant.text(), with a misspelt key on line 7.
INVALID_POLICY = (
    "# revision invalid\n"
    "timeouts: {connect: 2, read: 5}\n"
    "routes:\n"
    "  - path: /api/**\n"
    f"    origins: [{ORIGIN_B}]\n"
    "    methods: [GET, POST]\n"
    "    max_agee: 5\n"
)
INVALID_LINE_KEY = "7 routes[0].max_agee: unknown key"

# (kind, origin) pairs the traffic cycles through.
PROBES = (
    ("preflight", ORIGIN_A),
    ("preflight", ORIGIN_B),
    ("get", ORIGIN_A),
    ("get", ORIGIN_B),
)

Answer = tuple[int, str | None, str | None]  # status, Access-Control-Allow-Origin, Max-Age


def expected(variant: Variant, kind: str, origin: str) -> Answer:
    allowed = origin == variant.origin
    if kind == "preflight":
        return (204, origin, str(variant.max_age)) if allowed else (403, None, None)
    return (200, origin, None) if allowed else (403, None, None)


async def probe(session: aiohttp.ClientSession, base: str, kind: str, origin: str) -> Answer:
    if kind == "preflight":
        method, path = "OPTIONS", "/api/items"
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    else:
        method, path = "GET", "/api/ping"
        headers = {"Origin": origin}
    async with session.request(method, base + path, headers=headers) as response:
        body = await response.read()
        if response.status == 200:
            assert body == b"pong", body
        return (
            response.status,
            response.headers.get("Access-Control-Allow-Origin"),
            response.headers.get("Access-Control-Max-Age"),
        )


@dataclass
class Traffic:
    """A bounded stream of CORS requests from several clients at once.

    ``states`` lists the policies in the order they may come into force; a request
    may be answered by any state from the newest *confirmed* one when it was sent
    to the newest *announced* one when its answer arrived, and by no other.
    """

    base: str
    initial: Variant
    clients: int = 8
    minimum: int = 2000
    maximum: int = 20000
    states: list[Variant] = field(default_factory=list)
    confirmed: int = 0
    done: int = 0
    failures: list[str] = field(default_factory=list)
    by_state: dict[int, int] = field(default_factory=dict)
    finish: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.states.append(self.initial)

    def announce(self, variant: Variant) -> None:
        """The variant is on disk and may be swapped in at any moment from now."""
        self.states.append(variant)

    def confirm(self) -> None:
        """The newest announced variant is in force (its reload was logged)."""
        self.confirmed = len(self.states) - 1

    async def wait_for_requests(self, count: int) -> None:
        target = self.done + count
        while self.done < target and not self.failures:
            await asyncio.sleep(0.01)

    async def _client(self, index: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            step = index
            while self.done < self.maximum and not (
                self.finish.is_set() and self.done >= self.minimum
            ):
                kind, origin = PROBES[step % len(PROBES)]
                step += 1
                low = self.confirmed
                try:
                    answer = await probe(session, self.base, kind, origin)
                except (aiohttp.ClientError, OSError, AssertionError) as error:
                    self.failures.append(f"{kind} {origin}: {error!r}")
                    self.done += 1
                    continue
                high = len(self.states) - 1
                matches = [
                    i
                    for i in range(low, high + 1)
                    if expected(self.states[i], kind, origin) == answer
                ]
                if matches:
                    self.by_state[matches[-1]] = self.by_state.get(matches[-1], 0) + 1
                else:
                    self.failures.append(
                        f"{kind} {origin}: {answer} matches none of states {low}..{high}"
                    )
                self.done += 1

    async def run(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))


async def check_visible(base: str, variant: Variant) -> None:
    """A fresh connection sees exactly this variant's answers."""
    async with aiohttp.ClientSession() as session:
        for kind, origin in PROBES:
            assert await probe(session, base, kind, origin) == expected(variant, kind, origin)


async def wait_log(edge: Edge, pattern: str, timeout: float = 10.0) -> re.Match[str]:
    return await asyncio.to_thread(edge.stderr.wait_for, pattern, timeout)


async def admin_get(edge: Edge, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(edge.admin_url + path, timeout=aiohttp.ClientTimeout(total=5)) as response,
    ):
        return response.status, await response.text()


class ConfigMapVolume:
    """A directory laid out as the kubelet lays out a ConfigMap volume:

        policies.yaml -> ..data/policies.yaml
        ..data -> ..2026_11_25_17_00_00.000000001
        ..2026_11_25_17_00_00.000000001/policies.yaml

    and updated as the kubelet does it: a new timestamped directory, a temporary
    symlink to it renamed over ``..data`` (atomic), the old directory removed.
    """

    def __init__(self, root: Path, text: str, key: str = "policies.yaml") -> None:
        self.root = root
        self.key = key
        self.counter = 0
        root.mkdir(parents=True, exist_ok=True)
        first = self._write_dir(text)
        os.symlink(first.name, root / "..data")
        os.symlink(f"..data/{key}", root / key)

    @property
    def path(self) -> Path:
        return self.root / self.key

    def _write_dir(self, text: str) -> Path:
        self.counter += 1
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S", time.gmtime())
        directory = self.root / f"{stamp}.{self.counter:09d}"
        directory.mkdir()
        (directory / self.key).write_text(text)
        return directory

    def update(self, text: str) -> None:
        data = self.root / "..data"
        old = os.readlink(data)
        new = self._write_dir(text)
        tmp = self.root / "..data_tmp"
        os.symlink(new.name, tmp)
        os.rename(tmp, data)
        for child in (self.root / old).iterdir():
            child.unlink()
        (self.root / old).rmdir()


class FileReads:
    """Counts reads of one file as they happen (Linux inotify), to observe a watcher's
    polls as events instead of guessing them from elapsed time.

    Watches the directory the path resolves to *now* (a ConfigMap update moves the
    file to a new directory: make a new one after it). Every close of the file after a
    read-only open is one read, whoever made it; in these tests only the edge reads.
    """

    IN_CLOSE_NOWRITE = 0x00000010
    _EVENT = struct.Struct("iIII")

    def __init__(self, path: Path) -> None:
        target = path.resolve()
        self.name = target.name.encode()
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        watch = self._libc.inotify_add_watch(
            self._fd, str(target.parent).encode(), self.IN_CLOSE_NOWRITE
        )
        if watch < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {target.parent}")
        self.times: list[float] = []  # time.monotonic() of each read seen

    async def wait(self, count: int, timeout: float = 30.0) -> list[float]:
        """Until ``count`` more reads happened (the timeout is only a safety net)."""
        target = len(self.times) + count
        await asyncio.to_thread(self._read_until, target, time.monotonic() + timeout)
        return self.times

    def _read_until(self, target: int, deadline: float) -> None:
        while len(self.times) < target:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                raise TimeoutError(f"{len(self.times)} reads of {self.name!r}, not {target}")
            data = os.read(self._fd, 4096)
            offset = 0
            while offset < len(data):
                _, mask, _, length = self._EVENT.unpack_from(data, offset)
                name = data[offset + self._EVENT.size : offset + self._EVENT.size + length]
                offset += self._EVENT.size + length
                if mask & self.IN_CLOSE_NOWRITE and name.rstrip(b"\0") == self.name:
                    self.times.append(time.monotonic())

    def close(self) -> None:
        os.close(self._fd)
