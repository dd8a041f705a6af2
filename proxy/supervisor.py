"""``serve --workers N``: one parent supervising N worker processes on one listener.

Workers listen with SO_REUSEPORT (the kernel spreads connections by their hash; one
inherited socket let one worker take 8 of 8 concurrent connections: README,
"Workers"). The parent keeps the port bound but never listening, so it gets no
connection, and serves nothing itself; it

- validates the policy file before any worker sees it, then hands every worker the
  same snapshot of it (two-phase, see :mod:`proxy.control`): all workers move to the
  same generation or none does;
- restarts a worker that dies, with exponential back-off, and logs why;
- owns the admin listener (``/readyz`` for the whole, ``/metrics`` summed over workers:
  see :mod:`proxy.fleet_admin`; the process around it is :mod:`proxy.fleet`);
- on SIGTERM turns readiness false, keeps the workers accepting for ``--drain-delay``,
  then closes its copy of the listener and has every worker drain within ``--grace``
  (asked over the control channel, so a worker signalled too is not cut short);
  exits 0 once they all have. A second signal is passed on and cuts the drain short.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path

from .control import ChannelClosed, Message, ParentChannel, ask_to_stop
from .loader import PolicyError
from .policy import Config
from .policyread import BoundedReader

log = logging.getLogger("cors_edge")

RESTART_BACKOFF_FIRST = 0.25  # seconds before the first restart of a worker
RESTART_BACKOFF_MAX = 15.0
STABLE_AFTER = 30.0  # a worker that lived this long restarts without back-off
PREPARE_TIMEOUT = 30.0  # a worker compiling a snapshot longer than this fails the reload
STOP_REQUEST_TIMEOUT = 2.0  # a worker not acknowledging "stop" this fast gets SIGTERM


@dataclass(slots=True)
class Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    channel: ParentChannel | None = None
    generation: int = 0
    ready: bool = False
    restarts: int = 0
    started: float = 0.0
    backoff: float = RESTART_BACKOFF_FIRST


@dataclass(frozen=True, slots=True)
class FleetOptions:
    """What the parent needs beyond the worker's own ``serve`` arguments."""

    workers: int
    config: Config  # validated, with the command line's overrides applied
    config_text: bytes  # the bytes it was compiled from: generation 1's snapshot
    config_path: Path
    grace: float
    drain_delay: float
    worker_args: tuple[str, ...]  # passed through to every worker (logging, timeouts)
    watch: bool = False
    watch_interval: float = 1.0


@dataclass(slots=True)
class Generation:
    number: int
    config: Config
    snapshot: Path


@dataclass
class Supervisor:
    options: FleetOptions
    # Reads and compiles the policy file (off the loop), returning it with its bytes.
    load: Callable[[], tuple[Config, bytes]]
    workers: list[Worker] = field(default_factory=list)
    draining: bool = False
    reload_results: dict[str, int] = field(
        default_factory=lambda: {"ok": 0, "unchanged": 0, "error": 0}
    )

    def __post_init__(self) -> None:
        self._state_dir = Path(tempfile.mkdtemp(prefix="cors-edge-"))
        self.metrics_dir = self._state_dir / "metrics"
        self.metrics_dir.mkdir()
        self.current = self._snapshot(1, self.options.config, self.options.config_text)
        self._listener: socket.socket | None = None
        self.address: tuple[str, int] = ("", 0)
        self._stopping = asyncio.Event()
        self._hurry = asyncio.Event()
        self._reload_lock = asyncio.Lock()
        self._tasks: set[asyncio.Future[object]] = set()

    # --- generations --------------------------------------------------------

    def _snapshot(self, number: int, config: Config, text: bytes) -> Generation:
        path = self._state_dir / f"generation-{number}.yaml"
        path.write_bytes(text)
        return Generation(number, config, path)

    # --- workers --------------------------------------------------------------

    def bind(self) -> tuple[str, int]:
        """Reserve the public port (resolving port 0) without listening on it."""
        host, _, port = self.options.config.listen.rpartition(":")
        host = host.strip("[]") or "0.0.0.0"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self._listener.bind((host, int(port)))
        bound = self._listener.getsockname()
        self.address = (host, int(bound[1]))
        return self.address

    async def _spawn(self, worker: Worker) -> None:
        assert self._listener is not None
        parent_end, child_end = socket.socketpair()
        child_end.set_inheritable(True)
        generation = self.current
        argv = [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--config",
            str(self.options.config_path),
            "--worker-of-parent",
            f"{child_end.fileno()},{worker.index}",
            "--snapshot",
            f"{generation.number}:{generation.snapshot}",
            "--upstream",
            self.options.config.upstream,
            "--listen",
            f"[{self.address[0]}]:{self.address[1]}",
            "--grace",
            str(self.options.grace),
            *self.options.worker_args,
        ]
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)}
        worker.ready = False
        worker.generation = 0
        worker.channel = ParentChannel(lambda event: self._on_event(worker, event))
        worker.process = await asyncio.create_subprocess_exec(
            *argv, pass_fds=(child_end.fileno(),), env=env
        )
        child_end.close()
        await worker.channel.attach(parent_end)
        worker.started = time.monotonic()
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)
        self._track(self._supervise(worker))

    def _on_event(self, worker: Worker, event: Message) -> None:
        if event.get("event") == "ready":
            worker.ready = True
            worker.generation = int(event.get("generation", 0))
            if worker.generation != self.current.number:
                # Started on an older snapshot while a reload ran: bring it up to date.
                self._track(self._catch_up(worker))

    async def _catch_up(self, worker: Worker) -> None:
        async with self._reload_lock:
            generation = self.current
            if worker.generation == generation.number or worker.channel is None:
                return
            with contextlib.suppress(ChannelClosed, TimeoutError):
                await self._prepare_one(worker, generation)
                await worker.channel.request(
                    {"op": "commit", "generation": generation.number}, PREPARE_TIMEOUT
                )
                worker.generation = generation.number

    async def _supervise(self, worker: Worker) -> None:
        assert worker.process is not None
        status = await worker.process.wait()
        worker.ready = False
        if worker.channel is not None:
            await worker.channel.close()
        if self._stopping.is_set():
            return
        lived = time.monotonic() - worker.started
        if lived >= STABLE_AFTER:
            worker.backoff = RESTART_BACKOFF_FIRST
        delay = worker.backoff
        worker.backoff = min(worker.backoff * 2, RESTART_BACKOFF_MAX)
        worker.restarts += 1
        log.error(
            "worker %d (pid %d) exited with %s after %.1f s; restarting in %.2f s",
            worker.index,
            worker.process.pid,
            _describe_status(status),
            lived,
            delay,
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        if not self._stopping.is_set():
            await self._spawn(worker)

    def _track(self, coroutine: Coroutine[object, object, object]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- reload -------------------------------------------------------------

    def schedule_reload(self, reason: str) -> None:
        self._track(self.reload(reason))

    async def reload(self, reason: str) -> bool:
        async with self._reload_lock:
            loop = asyncio.get_running_loop()
            try:
                config, text = await loop.run_in_executor(None, self.load)
            except PolicyError as error:
                return self._refused(reason, str(error))
            except Exception as error:  # a loader bug must not take the parent down
                log.error("reload (%s) failed unexpectedly", reason, exc_info=error)
                return self._refused(reason, repr(error))
            if config.sha256 == self.current.config.sha256:
                self.reload_results["unchanged"] += 1
                log.info(
                    "reload (%s): unchanged, keeping generation %d", reason, self.current.number
                )
                return True
            config = dataclasses.replace(
                config,
                upstream=self.current.config.upstream,
                listen=self.current.config.listen,
                admin=self.current.config.admin,
            )
            candidate = self._snapshot(self.current.number + 1, config, text)
            return await self._fan_out(candidate, reason)

    async def _fan_out(self, candidate: Generation, reason: str) -> bool:
        live = [w for w in self.workers if w.channel is not None and w.process is not None]
        results = await asyncio.gather(
            *(self._prepare_one(w, candidate) for w in live), return_exceptions=True
        )
        failures = [f"worker {w.index}: {r}" for w, r in zip(live, results, strict=True) if r]
        op = "abort" if failures else "commit"
        await asyncio.gather(
            *(
                w.channel.request({"op": op, "generation": candidate.number}, PREPARE_TIMEOUT)
                for w in live
                if w.channel is not None
            ),
            return_exceptions=True,
        )
        if failures:
            return self._refused(reason, "; ".join(failures))
        self.current = candidate
        for worker in live:
            worker.generation = candidate.number
        self.reload_results["ok"] += 1
        log.info(
            "reload (%s): policy %s generation %d sha256 %s, on all %d workers",
            reason,
            candidate.config.source,
            candidate.number,
            candidate.config.sha256,
            len(live),
        )
        return True

    async def _prepare_one(self, worker: Worker, generation: Generation) -> str | None:
        """None when the worker compiled the snapshot, else why not."""
        if worker.channel is None:
            return "not running"
        try:
            reply = await worker.channel.request(
                {
                    "op": "prepare",
                    "generation": generation.number,
                    "snapshot": str(generation.snapshot),
                },
                PREPARE_TIMEOUT,
            )
        except (ChannelClosed, TimeoutError) as error:
            return f"no answer ({error.__class__.__name__})"
        return None if reply.get("ok") else str(reply.get("error"))

    def _refused(self, reason: str, message: str) -> bool:
        self.reload_results["error"] += 1
        log.error(
            "reload (%s) refused, keeping generation %d sha256 %s on every worker: %s",
            reason,
            self.current.number,
            self.current.config.sha256,
            message,
        )
        return False

    # --- run and stop ---------------------------------------------------------

    async def start(self) -> None:
        self.workers = [Worker(index) for index in range(self.options.workers)]
        for worker in self.workers:
            if self._stopping.is_set():
                # SIGTERM while starting: the workers not yet started never will be.
                log.info("not starting workers %d and up: shutting down", worker.index)
                break
            await self._spawn(worker)

    async def stopping(self) -> None:
        await self._stopping.wait()

    async def watch(self) -> None:
        """--watch for the whole: the parent reloads when the file's content changes
        (every worker then moves through the same two-phase reload as on SIGHUP)."""
        interval = max(self.options.watch_interval, 0.05)
        reader = BoundedReader(self.options.config_path)  # a FIFO or hung mount wedges nothing
        while True:
            await asyncio.sleep(interval)
            try:
                text = await reader.read()
            except PolicyError:
                continue
            if hashlib.sha256(text).hexdigest() != self.current.config.sha256:
                await self.reload("file changed")

    def request_stop(self, signame: str) -> None:
        if self._stopping.is_set():
            log.warning("%s again: cutting every worker's drain short", signame)
            self._hurry.set()
            self._track(self._ask_workers_to_stop(hurry=True))
            return
        log.info("%s: shutting down %d workers", signame, len(self.workers))
        self.draining = True
        self._stopping.set()

    async def _ask_workers_to_stop(self, *, hurry: bool = False) -> None:
        # Over the channel: a worker signalled from outside must not read ours as its second.
        timeout = STOP_REQUEST_TIMEOUT
        await asyncio.gather(
            *(ask_to_stop(w.channel, w.process, hurry=hurry, timeout=timeout) for w in self.workers)
        )

    async def drain(self) -> int:
        """Readiness is already false; returns the exit status for the parent."""
        if self.options.drain_delay > 0:
            log.info(
                "draining: workers keep accepting for %.1f s (--drain-delay)",
                self.options.drain_delay,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), self.options.drain_delay)
        await self._ask_workers_to_stop()
        processes = [w.process for w in self.workers if w.process is not None]
        # Each worker bounds its own drain by --grace; this only guards against a hung one.
        waits = [asyncio.ensure_future(p.wait()) for p in processes]
        _, pending = await asyncio.wait(waits, timeout=self.options.grace + 10)
        for process in processes:
            if process.returncode is None:
                log.error("worker pid %d did not stop in time; killing it", process.pid)
                process.kill()
        if pending:
            await asyncio.wait(pending)
        if self._listener is not None:
            self._listener.close()
        # A worker only dies of SIGTERM's default action outside its serving loop (before
        # its handlers are installed, or after its drain ended): nothing was in flight.
        # That happens when parent and workers are signalled together (systemd's
        # KillMode=control-group, kill -TERM -PGID): ours then arrives after its drain.
        clean = (0, -signal.SIGTERM)
        return 0 if all(p.returncode in clean for p in processes) else 1

    def cleanup(self) -> None:
        shutil.rmtree(self._state_dir, ignore_errors=True)


def _describe_status(status: int) -> str:
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-status).name}"
        return f"signal {-status}"
    return f"status {status}"
