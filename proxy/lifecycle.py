"""Process lifecycle: start the listeners, reload on SIGHUP, drain on SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .admin import AdminState, make_admin_app
from .forward import Upstream
from .policy import PolicyError, PolicySet, load_policy_file
from .server import EdgeServer, Observer, PolicyHolder

log = logging.getLogger("cors_edge")


@dataclass(frozen=True, slots=True)
class ServeOptions:
    config: Path
    upstream: str | None = None
    listen: str | None = None
    admin: str | None = None
    grace: float = 10.0
    watch: bool = False
    watch_interval: float = 1.0


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Service:
    """One running cors-edge: edge listener, admin listener, policy holder, upstream."""

    def __init__(self, options: ServeOptions, observers: list[Observer] | None = None) -> None:
        self.options = options
        self.holder = PolicyHolder(self.load())
        policies = self.holder.current
        self.upstream = Upstream(policies.upstream, policies.timeouts, policies.limits)
        self.edge = EdgeServer(self.holder, self.upstream, observers)
        self.admin_state = AdminState(self.holder, self.upstream)
        self._stopping = asyncio.Event()
        self._edge_runner: web.ServerRunner | None = None
        self._admin_runner: web.AppRunner | None = None
        self.edge_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None

    def load(self) -> PolicySet:
        policies = load_policy_file(self.options.config)
        options = self.options
        return dataclasses.replace(
            policies,
            upstream=options.upstream or policies.upstream,
            listen=options.listen or policies.listen,
            admin=options.admin or policies.admin,
        )

    def reload(self, reason: str = "SIGHUP") -> bool:
        """Re-read the policy file; swap it in if valid, else keep the old one."""
        try:
            policies = self.load()
        except PolicyError as error:
            self.admin_state.reloads_failed += 1
            log.error(
                "reload (%s) refused, keeping generation %d: %s",
                reason,
                self.holder.generation,
                error,
            )
            return False
        if policies.upstream != self.holder.current.upstream:
            log.warning(
                "reload (%s): upstream changes need a restart; keeping %s",
                reason,
                self.holder.current.upstream,
            )
            policies = dataclasses.replace(policies, upstream=self.holder.current.upstream)
        generation = self.holder.swap(policies)
        self.admin_state.reloads_ok += 1
        for warning in policies.warnings:
            log.warning("%s", warning)
        log.info(
            "reload (%s): generation %d, sha256 %s, %d routes",
            reason,
            generation,
            policies.sha256[:12],
            len(policies.routes),
        )
        return True

    async def start(self) -> None:
        policies = self.holder.current
        await self.upstream.start()
        self._edge_runner = web.ServerRunner(
            self.edge.make_server(), handle_signals=False, shutdown_timeout=self.options.grace
        )
        await self._edge_runner.setup()
        host, port = split_address(policies.listen)
        edge_site = web.TCPSite(self._edge_runner, host, port, backlog=1024, reuse_address=True)
        await edge_site.start()
        self.edge_address = _bound_address(self._edge_runner)
        self._admin_runner = web.AppRunner(
            make_admin_app(self.admin_state), handle_signals=False, access_log=None
        )
        await self._admin_runner.setup()
        admin_host, admin_port = split_address(policies.admin)
        await web.TCPSite(self._admin_runner, admin_host, admin_port, reuse_address=True).start()
        self.admin_address = _bound_address(self._admin_runner)
        self.admin_state.ready = True
        edge_host, edge_port = self.edge_address
        admin_host, admin_port = self.admin_address
        log.info(
            "listening on %s:%d (admin %s:%d), upstream %s, policy %s generation %d sha256 %s",
            edge_host,
            edge_port,
            admin_host,
            admin_port,
            policies.upstream,
            policies.source,
            self.holder.generation,
            policies.sha256[:12],
        )

    async def stop(self) -> None:
        """Readiness false, stop accepting, let in-flight requests finish, close."""
        self.admin_state.ready = False
        self.admin_state.draining = True
        if self._edge_runner is not None:
            await self._edge_runner.cleanup()
        await self.upstream.close()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()

    def request_stop(self) -> None:
        self._stopping.set()

    async def watch(self) -> None:
        """Reload when the file's content changes (a ConfigMap swaps a symlink: no inotify
        event reaches a watch on the file itself, so compare content hashes instead)."""
        last = self.holder.current.sha256
        while True:
            await asyncio.sleep(self.options.watch_interval)
            try:
                digest = hashlib.sha256(self.options.config.read_bytes()).hexdigest()
            except OSError:
                continue  # mid-swap, or briefly missing: look again next time
            if digest != last:
                last = digest
                if digest != self.holder.current.sha256:
                    self.reload("file changed")

    async def run(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        watcher = asyncio.create_task(self.watch()) if self.options.watch else None
        try:
            await self._stopping.wait()
            if watcher is not None:
                watcher.cancel()
            log.info("shutting down: draining up to %.0f s", self.options.grace)
        finally:
            await self.stop()
        log.info("stopped")


def _bound_address(runner: web.BaseRunner) -> tuple[str, int]:
    for address in runner.addresses:
        if isinstance(address, tuple):
            return str(address[0]), int(address[1])
    raise RuntimeError("listener has no TCP address")


def install_event_loop_policy() -> str:
    """Use uvloop when importable; returns which loop is in use."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def serve(options: ServeOptions, observers: list[Observer] | None = None) -> int:
    loop_name = install_event_loop_policy()

    async def main() -> None:
        service = Service(options, observers)
        await service.run()

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
