"""One worker of ``serve --workers N``: today's service, on the parent's listener and policy.

A worker differs from a lone ``serve`` in four ways only:

- it listens with SO_REUSEPORT on the address the parent reserved (see
  :mod:`proxy.supervisor` for why not one inherited socket);
- it has no admin listener: the parent answers ``/healthz``, ``/readyz`` and ``/metrics``
  for the whole, asking each worker over the control channel (:mod:`proxy.control`);
- it never reads the policy file on its own: SIGHUP goes to the parent, which hands
  every worker the same validated snapshot (prepare, then commit or abort);
- it stops, draining as on SIGTERM, when the parent's end of the channel closes, so a
  worker never outlives its supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .control import Message, WorkerChannel
from .lifecycle import _CLOSE_TIMEOUT, ServeOptions, Service, serve, split_address
from .metrics import Metrics
from .policy import Config
from .records import Observer

log = logging.getLogger("cors_edge")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    control_fd: int
    index: int
    generation: int
    snapshot: Path

    @classmethod
    def parse(cls, parent: str, snapshot: str) -> WorkerSpec:
        """From ``--worker-of-parent CONTROL_FD,INDEX --snapshot GEN:PATH``."""
        control_fd, index = (int(part) for part in parent.split(","))
        generation, _, path = snapshot.partition(":")
        return cls(control_fd, index, int(generation), Path(path))


def serve_worker(options: ServeOptions, spec: WorkerSpec, observers: list[Observer]) -> int:
    return serve(lambda: WorkerService(options, spec, observers))


class WorkerService(Service):
    def __init__(
        self, options: ServeOptions, spec: WorkerSpec, observers: list[Observer] | None
    ) -> None:
        self.spec = spec
        self._prepared: dict[int, Config] = {}
        self._sigterms = 0
        # Requests only: the parent reports reloads, generations and readiness.
        super().__init__(options, observers, Metrics(lifecycle=False))
        self.holder.swap(self.holder.current, spec.generation)
        self.channel = WorkerChannel(self)

    def load(self) -> Config:
        return self._load_snapshot(self.spec.snapshot)

    def _load_snapshot(self, path: Path) -> Config:
        # The parent validated these bytes already (a snapshot it wrote, never the
        # operator's file); compile() names the operator's file as their source.
        return self.compile(path.read_bytes())

    # --- the control channel (WorkerSide) --------------------------------------

    async def prepare(self, generation: int, snapshot: str) -> None:
        loop = asyncio.get_running_loop()
        self._prepared[generation] = await loop.run_in_executor(
            None, self._load_snapshot, Path(snapshot)
        )

    def commit(self, generation: int) -> None:
        config = self._prepared.pop(generation, None)
        if config is None:
            raise RuntimeError(f"generation {generation} was not prepared")
        self._prepared.clear()
        self.holder.swap(config, generation)
        log.info(
            "worker %d: policy generation %d sha256 %s", self.spec.index, generation, config.sha256
        )

    def abort(self, generation: int) -> None:
        self._prepared.pop(generation, None)

    def parent_stop(self, hurry: bool) -> None:
        """The parent's shutdown (``hurry``: its second signal). Counted apart from the
        worker's own signals: when parent and workers are signalled together, the
        parent's request and the worker's SIGTERM are one shutdown, in either order."""
        if hurry:
            self._hurry.set()
        if not self._stopping.is_set():
            self.request_stop("the parent's shutdown")

    def _on_sigterm(self) -> None:
        self._sigterms += 1
        if self._sigterms == 1 and self._stopping.is_set():
            log.info("SIGTERM: draining already (the parent asked)")
            return
        self.request_stop("SIGTERM")

    def state(self) -> Message:
        return {
            "ready": self.admin_state.ready and not self.admin_state.draining,
            "generation": self.holder.generation,
            "in_flight": self.edge.in_flight,
        }

    # --- start and run ----------------------------------------------------------

    async def start(self) -> None:
        await self.upstream.start()
        self._edge_server = self.edge.make_server()
        self._edge_runner = web.ServerRunner(
            self._edge_server, handle_signals=False, shutdown_timeout=_CLOSE_TIMEOUT
        )
        await self._edge_runner.setup()
        host, port = split_address(self.holder.current.listen)
        await web.TCPSite(
            self._edge_runner, host, port, backlog=1024, reuse_address=True, reuse_port=True
        ).start()
        self.admin_state.ready = True
        log.info("serving on the parent's listener, policy generation %d", self.holder.generation)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # The parent coordinates reloads; a stray SIGHUP to one worker changes nothing.
        loop.add_signal_handler(signal.SIGHUP, log.info, "SIGHUP ignored: send it to the parent")
        loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the parent decides (Ctrl-C)
        await self.channel.open(self.spec.control_fd)
        channel = asyncio.create_task(self.channel.serve(lambda: self.request_stop("parent gone")))
        try:
            await self.start()
        except BaseException:
            await self._close()
            raise
        self.channel.announce_ready(self.holder.generation)
        try:
            await self._stopping.wait()
        finally:
            await self.stop()
            channel.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await channel
        log.info("stopped")
