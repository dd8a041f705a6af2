"""Process lifecycle: start the listeners, reload on SIGHUP (or --watch), drain on SIGTERM/SIGINT.

Reload
    The policy file is re-read and compiled off to the side; only a fully valid
    :class:`~proxy.policy.Config` is swapped into the
    :class:`~proxy.records.PolicyHolder` (with its verdict cache, in one assignment on
    the event loop, so atomic). A request reads the holder's snapshot once when it
    starts and finishes under that policy. A refused
    file is logged with its ``file:line key`` and the old policy keeps serving.
    ``--watch`` polls the file's content hash every ``--watch-interval`` seconds and
    reloads through the same path; reading through the path each time follows a
    Kubernetes ConfigMap's ``..data`` symlink swap, which inotify on the file misses.

Shutdown
    SIGTERM or SIGINT: readiness turns false at once (admin ``/readyz`` answers 503),
    then after ``--drain-delay`` seconds the public listener closes (new connections
    are refused), in-flight requests get up to ``--grace`` seconds to finish, idle
    keep-alive connections are closed, and the process exits 0. A second signal cuts
    the grace period short.

Public aiohttp API only; connections are closed by ``EdgeHTTPServer.close_connections``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .accesslog import UpstreamErrorLog
from .admin import AdminState, start_admin
from .forward import Upstream
from .loader import PolicyError, load_policy_bytes
from .metrics import Metrics
from .policy import Config
from .policyread import BoundedReader, PolicySource
from .protocol import EdgeHTTPServer
from .records import Observer, PolicyHolder
from .runtime import install_event_loop_policy, keep_freed_memory, tune_collector
from .server import EdgeServer

log = logging.getLogger("cors_edge")

# How long aiohttp may take, after the grace period, to close what is left.
_CLOSE_TIMEOUT = 0.25
# Settings read once at start (listeners, upstream client, connection handling).
# Everything else in the file (routes, defaults, trust_forwarded_from,
# limits.max_body_bytes) applies to the next request after a reload.
_RESTART_ONLY = ("listen", "admin", "timeouts")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Path
    upstream: str | None = None
    listen: str | None = None
    admin: str | None = None
    grace: float = 10.0
    watch: bool = False
    watch_interval: float = 1.0
    drain_delay: float = 0.0
    policy_source: PolicySource | None = None  # None: the file; serve --allow-origin sets one
    debug: str | None = None  # None, "loopback", "public" or "auto" (proxy/debug.py)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Service:
    """One running cors-edge: edge listener, admin listener, policy holder, upstream."""

    def __init__(
        self,
        options: ServeOptions,
        observers: list[Observer] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.options = options
        self.metrics = metrics if metrics is not None else Metrics()
        self._policy_reader = options.policy_source or BoundedReader(options.config)
        self.holder = PolicyHolder.serving(policies := self.load(), options.debug)
        self.upstream = Upstream(policies.upstream, policies.timeouts, policies.limits)
        # Upstream failures are always explained on stderr; the access log is optional.
        error_log = UpstreamErrorLog(policies.upstream, policies.timeouts)
        self.edge = EdgeServer(
            self.holder, self.upstream, [self.metrics, error_log, *(observers or [])]
        )
        self.admin_state = AdminState(self.holder, self.upstream, registry=self.metrics.registry)
        self.metrics.policy_loaded(policies, self.holder.generation)
        self.metrics.track(
            in_flight=lambda: float(self.edge.in_flight),
            ready=lambda: float(self.admin_state.ready and not self.admin_state.draining),
        )
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._reload_tasks: set[asyncio.Future[bool]] = set()
        self._edge_runner: web.ServerRunner | None = None
        self._edge_server: EdgeHTTPServer | None = None
        self._admin_runner: web.AppRunner | None = None
        self.edge_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None

    def load(self) -> Config:
        return self.compile(self._policy_reader.read_blocking())  # bounded: proxy.policyread

    def compile(self, raw: bytes) -> Config:
        policies = load_policy_bytes(raw, self._policy_reader.source)
        options = self.options
        return dataclasses.replace(
            policies,
            upstream=options.upstream or policies.upstream,
            listen=options.listen or policies.listen,
            admin=options.admin or policies.admin,
        )

    # --- reload ---------------------------------------------------------------

    def schedule_reload(self, reason: str) -> None:
        """From a signal handler: reload in the background, one reload at a time."""
        task = asyncio.ensure_future(self.reload_in_background(reason))
        self._reload_tasks.add(task)
        task.add_done_callback(self._reload_tasks.discard)

    async def reload_in_background(self, reason: str) -> bool:
        """Read the file off the loop, bounded in size and time (proxy.policyread: a stuck
        read wedges nothing), compile it on a worker thread (a big policy takes a while),
        then swap it in on the event loop, atomically with respect to requests."""
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            try:
                raw = await self._policy_reader.read()
                policies = await loop.run_in_executor(None, self.compile, raw)
            except Exception as error:
                self._load_failed(reason, error)
                return False
            return self._apply(policies, reason)

    def _load_failed(self, reason: str, error: Exception) -> None:
        if isinstance(error, PolicyError):
            self._reload_refused(reason, str(error))
            return
        # A bug in the loader must not take the edge down.
        log.error("reload (%s) failed unexpectedly", reason, exc_info=error)
        self._reload_refused(reason, f"{self.options.config}: {error!r}")

    def _apply(self, policies: Config, reason: str) -> bool:
        old = self.holder.current
        for warning in policies.warnings:
            log.warning("%s", warning)
        if policies.upstream != old.upstream:
            log.warning(
                "reload (%s): upstream changes need a restart; keeping %s",
                reason,
                old.upstream,
            )
            policies = dataclasses.replace(policies, upstream=old.upstream)
        for name in _RESTART_ONLY:
            if getattr(policies, name) != getattr(old, name):
                log.warning("reload (%s): %s changes take effect on restart only", reason, name)
        if dataclasses.replace(policies.limits, max_body_bytes=old.limits.max_body_bytes) != (
            old.limits
        ):
            log.warning(
                "reload (%s): limits other than max_body_bytes take effect on restart only",
                reason,
            )
        if policies.sha256 == old.sha256:
            self.metrics.reload_result("unchanged")
            log.info(
                "reload (%s): unchanged, keeping generation %d sha256 %s",
                reason,
                self.holder.generation,
                policies.sha256,
            )
            return True
        generation = self.holder.swap(policies)
        self.metrics.reload_result("ok")
        self.metrics.policy_loaded(policies, generation)
        log.info(
            "reload (%s): policy %s generation %d sha256 %s, %d route%s",
            reason,
            policies.source,
            generation,
            policies.sha256,
            len(policies.route_list),
            "" if len(policies.route_list) == 1 else "s",
        )
        return True

    def _reload_refused(self, reason: str, message: str) -> None:
        self.metrics.reload_result("error")
        log.error(
            "reload (%s) refused, keeping generation %d sha256 %s: %s",
            reason,
            self.holder.generation,
            self.holder.current.sha256,
            message,
        )

    async def watch(self) -> None:
        """Reload when the file's content changes.

        A Kubernetes ConfigMap volume swaps a ``..data`` symlink to a new directory;
        no inotify event reaches a watch on the file itself, and the mtime seen
        through the path can go backwards. Hashing the content read through the path
        catches every swap. Read once per interval, off the loop and bounded.
        """
        path = self.options.config
        interval = max(self.options.watch_interval, 0.05)
        last = self.holder.current.sha256
        missing = False
        while True:
            await asyncio.sleep(interval)
            try:
                digest = hashlib.sha256(await self._policy_reader.read()).hexdigest()
            except PolicyError as error:
                if not missing:  # say it once, not every interval
                    why = error.message.removeprefix("cannot read: ")
                    log.warning("watch: cannot read %s (%s); keeping generation %d", path, why,
                                self.holder.generation)  # fmt: skip
                missing = True
                continue
            if missing:
                log.info("watch: %s is readable again", path)
                missing = False
            if digest == last:
                continue
            last = digest
            if digest != self.holder.current.sha256:
                await self.reload_in_background("file changed")

    # --- start and stop -------------------------------------------------------

    async def start(self) -> None:
        policies = self.holder.current
        listen, admin = split_address(policies.listen), split_address(policies.admin)
        if listen == admin and listen[1] != 0:
            raise OSError(
                f"admin address {policies.admin} is the public listener's: /healthz, /readyz "
                "and /metrics are never served on the public port; choose another --admin"
            )
        await self.upstream.start()
        # In-flight requests are waited for in drain(); aiohttp's own wait only has to
        # close what is left after the grace period.
        self._edge_server = self.edge.make_server()
        self._edge_runner = web.ServerRunner(
            self._edge_server, handle_signals=False, shutdown_timeout=_CLOSE_TIMEOUT
        )
        await self._edge_runner.setup()
        edge_site = web.TCPSite(self._edge_runner, *listen, backlog=1024, reuse_address=True)
        await edge_site.start()
        self.edge_address = _bound_address(self._edge_runner)
        self._admin_runner = await start_admin(self.admin_state, *admin, policies.admin)
        if self._admin_runner is not None:
            self.admin_address = _bound_address(self._admin_runner)
        self.admin_state.ready = True
        log.info(
            "listening on %s:%d (admin %s), upstream %s, policy %s generation %d sha256 %s",
            *self.edge_address,
            ":".join(map(str, self.admin_address or ())) or "unavailable",
            policies.upstream,
            policies.source,
            self.holder.generation,
            policies.sha256,
        )

    async def stop(self) -> None:
        """Readiness false, stop accepting, let in-flight requests finish, close."""
        await self.drain()
        await self._close()

    async def _close(self) -> None:
        for runner in (self._edge_runner, self._admin_runner):
            if runner is not None:
                await runner.cleanup()
        self._edge_runner = self._admin_runner = None
        await self.upstream.close()

    async def drain(self) -> None:
        """The graceful part of stop(): every step is bounded by the options."""
        self.admin_state.ready = False
        self.admin_state.draining = True
        runner = self._edge_runner
        if runner is None:
            return
        self._edge_runner = None
        log.info("draining: /readyz answers 503 from now on")
        delay, grace = self.options.drain_delay, self.options.grace
        if delay > 0:
            log.info("draining: still accepting for %.1f s (--drain-delay)", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), delay)
        for site in list(runner.sites):
            await site.stop()  # the listening socket closes: new connections are refused
        await asyncio.sleep(0)  # let requests read before the close reach their handler
        sockets = self.edge.websockets.going_away()  # 1001 now: they would never finish
        if sockets:
            log.info("draining: closed %d WebSocket%s (1001)", sockets, "" if sockets == 1 else "s")
        in_flight = self.edge.in_flight
        log.info(
            "draining: listener closed; waiting up to %.1f s for %d in-flight request%s",
            grace,
            in_flight,
            "" if in_flight == 1 else "s",
        )
        server = self._edge_server
        if server is not None:
            # Idle keep-alive connections close at once, busy ones after their response;
            # aiohttp may take up to twice the grace for it, so our own deadline rules.
            closing = asyncio.create_task(server.close_connections(grace))
            hurry = asyncio.create_task(self._hurry.wait())
            await asyncio.wait((closing, hurry), timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            hurry.cancel()
            cut = self.edge.in_flight
            if cut:
                log.warning(
                    "draining: %s; closing %d request%s still in flight",
                    "cut short" if self._hurry.is_set() else "grace period over",
                    cut,
                    "" if cut == 1 else "s",
                )
            if not closing.done():
                closing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closing
        await runner.cleanup()  # cuts whatever is left within _CLOSE_TIMEOUT

    def request_stop(self, signame: str = "signal") -> None:
        if self._stopping.is_set():
            log.warning("%s again: cutting the drain short", signame)
            self._hurry.set()
            return
        log.info("%s: shutting down", signame)
        self._stopping.set()

    async def run(self) -> None:
        # Handlers first: a signal that arrives while the listeners start is kept.
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.schedule_reload, "SIGHUP")
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "SIGTERM")
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "SIGINT")
        try:
            await self.start()
        except BaseException:
            await self._close()  # nothing was served: no drain to do
            raise
        tune_collector()  # the collections requests trigger skip all of start-up's
        watcher = asyncio.create_task(self.watch()) if self.options.watch else None
        try:
            await self._stopping.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            await self.stop()
        log.info("stopped")


def _bound_address(runner: web.BaseRunner) -> tuple[str, int]:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return str(address[0]), int(address[1])
    raise RuntimeError("listener has no TCP address")


def serve(make_service: Callable[[], Service]) -> int:
    """Run one service (a lone ``serve``, or a worker of ``--workers N``) in this process."""
    # SIGHUP's default action ends the process; until run() installs the reload
    # handler (imports, policy load, binding), a SIGHUP is ignored instead.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    loop_name = install_event_loop_policy()
    keep_freed_memory()

    async def main() -> None:
        await make_service().run()

    try:
        asyncio.run(main())
    except PolicyError as error:
        print(f"cors-edge: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"cors-edge: cannot listen: {error}", file=sys.stderr)
        return 1
    log.debug("event loop was %s", loop_name)
    return 0
