"""The upstream HTTP/1.1 client: a pool of keep-alive connections and one request on it.

- At most ``max_connections`` connections (connecting, busy or idle); a request beyond
  them waits for a free one, first come first served, for at most ``pool_wait`` seconds,
  then fails with :class:`PoolTimeout` (the edge answers 503).
- Idle connections are reused newest first and dropped once idle for ``idle_timeout``
  (kept shorter than the upstream's own keep-alive, so a request rarely meets one the
  upstream is closing). When it does, an idempotent request whose body can be sent
  again, and that got nothing back, is retried once on a new connection.
- ``http://host:port`` (a literal address connects directly; a name is resolved and
  cached for ``DNS_TTL`` seconds) or ``unix:/path.sock``.
- The request head: :mod:`proxy.upstream_request`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque
from collections.abc import Iterable

from multidict import CIMultiDictProxy

from .policy import Limits, Timeouts
from .upstream_conn import Body, UpstreamConnection
from .upstream_errors import ConnectFailed, ConnectTimeout, Disconnected, PoolTimeout
from .upstream_parse import HeadLimits, ResponseHead
from .upstream_request import IDEMPOTENT, UpstreamTarget, request_head

DNS_TTL = 10.0


class UpstreamResponse:
    """A response head from the upstream, its body to read, and its connection to give back."""

    __slots__ = ("_conn", "_pool", "head")

    def __init__(self, pool: UpstreamPool, conn: UpstreamConnection, head: ResponseHead) -> None:
        self._pool: UpstreamPool | None = pool
        self._conn = conn
        self.head = head

    @property
    def status(self) -> int:
        return self.head.status

    @property
    def reason(self) -> str:
        return self.head.reason

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.head.headers

    @property
    def content_length(self) -> int | None:
        return self.head.content_length

    async def read_chunk(self) -> bytes:
        """The next body piece as received; ``b""`` at its end."""
        return await self._conn.read_chunk()

    async def read(self) -> bytes:
        return await self._conn.read_all()

    def release(self) -> None:
        """Give the connection back (reused if the exchange ended cleanly); idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.release(self._conn)


class UpstreamPool:
    """Keep-alive connections to one upstream, shared by every request."""

    def __init__(
        self,
        target: UpstreamTarget,
        *,
        max_connections: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        idle_timeout: float,
        pool_wait: float | None,
        head_limits: HeadLimits,
    ) -> None:
        self.target = target
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.pool_wait = pool_wait
        self.head_limits = head_limits
        self._loop = asyncio.get_running_loop()
        self._idle: list[UpstreamConnection] = []  # newest last
        self._live: set[UpstreamConnection] = set()
        self._slots = 0  # connections open or being opened
        self._waiters: deque[asyncio.Future[UpstreamConnection | None]] = deque()
        self._literal = target.unix_path is None and target.literal  # parsed once, not per connect
        self._authority = target.authority  # likewise, not per request
        self._addresses: list[tuple[str, int]] = []
        self._resolved_at = -DNS_TTL
        self._closed = False

    @classmethod
    def for_config(cls, address: str, timeouts: Timeouts, limits: Limits) -> UpstreamPool:
        """The pool a configuration asks for (``upstream``, ``timeouts``, ``limits``)."""
        return cls(
            UpstreamTarget.parse(address),
            max_connections=limits.max_upstream_connections,
            connect_timeout=timeouts.connect,
            read_timeout=timeouts.read,
            idle_timeout=timeouts.upstream_idle,
            pool_wait=timeouts.pool_wait,
            head_limits=HeadLimits(
                max_line=limits.max_upstream_header_line,
                max_total=limits.max_upstream_header_bytes,
            ),
        )

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @property
    def open_count(self) -> int:
        return self._slots

    async def request(
        self,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: Body = None,
        *,
        expect_continue: bool = False,
    ) -> UpstreamResponse:
        """Send one request and wait for its final response head."""
        streamed = body is not None and not isinstance(body, bytes)
        head, chunked = request_head(
            method,
            target,
            headers,
            body,
            expect=expect_continue and streamed,
            authority=self._authority,
        )
        may_retry = method in IDEMPOTENT and not streamed
        fresh = False
        while True:
            conn = await self.acquire(fresh=fresh)
            reused = conn.served > 0
            conn.begin(head_only=method == "HEAD", read_timeout=self.read_timeout)
            try:
                conn.start(head, body, chunked=chunked, expect_continue=expect_continue)
                response_head = await conn.response_head()
            except Disconnected as error:
                self.release(conn)
                if may_retry and reused and error.nothing_received:
                    may_retry, fresh = False, True  # a stale pooled connection: once more
                    continue
                raise
            except BaseException:
                self.release(conn)
                raise
            return UpstreamResponse(self, conn, response_head)

    # --- connections -----------------------------------------------------------------

    async def acquire(self, *, fresh: bool = False) -> UpstreamConnection:
        """An idle connection, a new one, or (all busy) the next one given back."""
        if self._closed:
            raise ConnectFailed("the upstream client is closed")
        if not fresh:
            conn = self._take_idle()
            if conn is not None:
                return conn
        if self._slots < self.max_connections:
            self._slots += 1
            return await self._open_slot()
        granted = await self._wait_turn()
        return granted if granted is not None else await self._open_slot()

    def release(self, conn: UpstreamConnection) -> None:
        """Back to the pool if it can serve another request, otherwise closed."""
        if conn.finish() and not self._closed:
            if self._hand_over(conn):
                return
            conn.idle_since = self._loop.time()
            self._idle.append(conn)
            return
        conn.close()
        self._forget(conn)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
            self._forget(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectFailed("the upstream client is closed"))

    def _take_idle(self) -> UpstreamConnection | None:
        now = self._loop.time()
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self.idle_timeout:
                return conn
            conn.close()  # idle too long: the upstream may be closing it right now
            self._forget(conn)
        return None

    async def _open_slot(self) -> UpstreamConnection:
        """Connect, on a slot already counted; the slot is freed again if that fails."""
        try:
            conn = await self._connect()
        except BaseException:
            self._slots -= 1
            self._grant_slot()
            raise
        self._live.add(conn)
        return conn

    async def _connect(self) -> UpstreamConnection:
        target = self.target
        try:
            async with asyncio.timeout(self.connect_timeout):
                if target.unix_path is not None:
                    _, protocol = await self._loop.create_unix_connection(
                        self._new_connection, target.unix_path
                    )
                    return protocol
                return await self._connect_tcp()
        except TimeoutError:
            raise ConnectTimeout(f"connecting took over {self.connect_timeout:g} s") from None
        except OSError as error:
            raise ConnectFailed(f"cannot connect to the upstream: {error}") from error

    async def _connect_tcp(self) -> UpstreamConnection:
        addresses = await self._resolve()
        failure: OSError | None = None
        for host, port in addresses:
            try:
                _, protocol = await self._loop.create_connection(self._new_connection, host, port)
            except OSError as error:
                failure = error
                continue
            return protocol
        raise failure or OSError(f"{self.target.host} resolved to nothing")

    async def _resolve(self) -> list[tuple[str, int]]:
        target = self.target
        if self._literal:
            return [(target.host, target.port)]
        now = self._loop.time()
        if not self._addresses or now - self._resolved_at > DNS_TTL:
            infos = await self._loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
            self._addresses = [(str(info[4][0]), int(info[4][1])) for info in infos]
            self._resolved_at = now
        return self._addresses

    def _new_connection(self) -> UpstreamConnection:
        return UpstreamConnection(self._loop, self.head_limits, on_lost=self._lost)

    def _lost(self, conn: UpstreamConnection) -> None:
        if conn in self._idle:  # closed by the upstream while pooled
            self._idle.remove(conn)
            self._forget(conn)

    def _forget(self, conn: UpstreamConnection) -> None:
        if conn in self._live:
            self._live.discard(conn)
            self._slots -= 1
            self._grant_slot()

    # --- waiting for a connection ----------------------------------------------------

    async def _wait_turn(self) -> UpstreamConnection | None:
        """A connection handed over, or ``None``: a slot to connect on."""
        waiter: asyncio.Future[UpstreamConnection | None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.pool_wait):
                return await waiter
        except BaseException as error:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give_back(waiter.result())  # granted just as we gave up
            waiter.cancel()
            if isinstance(error, TimeoutError):
                raise PoolTimeout(
                    f"no upstream connection free within {self.pool_wait:g} s "
                    f"({self.max_connections} busy)"
                ) from None
            raise

    def _hand_over(self, granted: UpstreamConnection | None) -> bool:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(granted)
                return True
        return False

    def _grant_slot(self) -> None:
        if self._waiters and self._slots < self.max_connections and not self._closed:
            self._slots += 1
            if not self._hand_over(None):
                self._slots -= 1

    def _give_back(self, granted: UpstreamConnection | None) -> None:
        if granted is None:
            self._slots -= 1
            self._grant_slot()
        elif not self._hand_over(granted):
            granted.idle_since = self._loop.time()
            self._idle.append(granted)
