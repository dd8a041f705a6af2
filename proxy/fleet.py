"""The parent process of ``serve --workers N``: validate, listen for admin, supervise.

Thin on purpose: what the parent does for the workers is :mod:`proxy.supervisor`, what
it answers on the admin listener is :mod:`proxy.fleet_admin`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from .debug import DebugRefused, debug_annotator
from .fleet_admin import make_fleet_admin_app
from .forward import Upstream
from .lifecycle import ServeOptions
from .loader import PolicyError, load_policy_bytes
from .policy import Config
from .policyread import BoundedReader
from .supervisor import FleetOptions, Supervisor

log = logging.getLogger("cors_edge")


async def run_fleet(supervisor: Supervisor, upstream: Upstream) -> int:
    """Bind, start the workers and the admin listener, serve until SIGTERM/SIGINT."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGHUP, supervisor.schedule_reload, "SIGHUP")
    loop.add_signal_handler(signal.SIGTERM, supervisor.request_stop, "SIGTERM")
    loop.add_signal_handler(signal.SIGINT, supervisor.request_stop, "SIGINT")
    host, port = supervisor.bind()
    admin_runner = web.AppRunner(
        make_fleet_admin_app(supervisor, upstream), handle_signals=False, access_log=None
    )
    await admin_runner.setup()
    admin_host, _, admin_port = supervisor.options.config.admin.rpartition(":")
    await web.TCPSite(admin_runner, admin_host.strip("[]"), int(admin_port)).start()
    admin = next(a for a in admin_runner.addresses if isinstance(a, tuple))
    await supervisor.start()
    log.info(
        "listening on %s:%d (admin %s:%d) with %d workers, upstream %s, policy %s generation %d",
        host,
        port,
        admin[0],
        admin[1],
        len(supervisor.workers),
        supervisor.options.config.upstream,
        supervisor.options.config.source,
        supervisor.current.number,
    )
    watcher = asyncio.create_task(supervisor.watch()) if supervisor.options.watch else None
    try:
        await supervisor.stopping()
        status = await supervisor.drain()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await admin_runner.cleanup()
        supervisor.cleanup()
    log.info("stopped")
    return status


def serve_fleet(options: ServeOptions, workers: int, worker_args: Sequence[str]) -> int:
    """``serve --workers N`` with N > 1: validate, then supervise (exit status of the whole)."""

    reader = BoundedReader(options.config)  # regular files only, bounded in size and time

    def load() -> tuple[Config, bytes]:
        source = str(options.config)
        text = reader.read_blocking()
        config = load_policy_bytes(text, source)
        return (
            dataclasses.replace(
                config,
                upstream=options.upstream or config.upstream,
                listen=options.listen or config.listen,
                admin=options.admin or config.admin,
            ),
            text,
        )

    try:
        config, text = load()
        # --debug on a public listener is refused here, before any worker starts.
        debug_annotator(options.debug, config.listen)
    except (PolicyError, DebugRefused) as error:
        print(f"cors-edge: {error}", file=sys.stderr)
        return 1
    for warning in config.warnings:
        log.warning("%s", warning)
    fleet = FleetOptions(
        workers=workers,
        config=config,
        config_text=text,
        config_path=options.config,
        grace=options.grace,
        drain_delay=options.drain_delay,
        worker_args=tuple(worker_args),
        watch=options.watch,
        watch_interval=options.watch_interval,
    )
    supervisor = Supervisor(fleet, load)
    upstream = Upstream(config.upstream, config.timeouts, config.limits)
    try:
        return asyncio.run(run_fleet(supervisor, upstream))
    except OSError as error:
        print(f"cors-edge: cannot listen: {error}", file=sys.stderr)
        supervisor.cleanup()
        return 1
