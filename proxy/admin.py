"""The admin listener: liveness, readiness and metrics, never on the public port.

- ``/healthz``: 200 while the process lives (the event loop answers).
- ``/readyz``: 200 when a policy is loaded, the edge is not draining and the
  upstream accepts a TCP connection; 503 otherwise, with the reason.
- ``/metrics``: Prometheus text format from cors-edge's own registry
  (see :mod:`proxy.metrics`).

An ordinary aiohttp application (public API only), on its own listener.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .edge_answers import SERVER

if TYPE_CHECKING:
    from .forward import Upstream
    from .records import PolicyHolder

log = logging.getLogger("cors_edge")


@dataclass(slots=True)
class AdminState:
    holder: PolicyHolder
    upstream: Upstream
    ready: bool = False
    draining: bool = False
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)


def make_admin_app(state: AdminState) -> web.Application:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        if state.draining:
            return web.json_response({"ready": False, "reason": "draining"}, status=503)
        if not state.ready:
            return web.json_response({"ready": False, "reason": "starting"}, status=503)
        if not await state.upstream.probe():
            return web.json_response(
                {"ready": False, "reason": "upstream not accepting connections"}, status=503
            )
        snapshot = state.holder.snapshot
        return web.json_response(
            {
                "ready": True,
                "generation": snapshot.generation,
                "sha256": snapshot.config.sha256,
                "source": snapshot.config.source,
            }
        )

    async def metrics(request: web.Request) -> web.Response:
        return metrics_response(state.registry)

    return admin_application(healthz, readyz, metrics)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_application(healthz: Handler, readyz: Handler, metrics: Handler) -> web.Application:
    """The admin listener's three routes (a lone serve's, or the --workers parent's)."""
    app = web.Application()
    app.on_response_prepare.append(say_cors_edge)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def say_cors_edge(request: web.Request, response: web.StreamResponse) -> None:
    """``Server: cors-edge`` instead of aiohttp's version banner."""
    response.headers["Server"] = SERVER


def metrics_response(registry: CollectorRegistry) -> web.Response:
    body = generate_latest(registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start_admin(
    state: AdminState, host: str, port: int, address: str
) -> web.AppRunner | None:
    """Serve the admin app on ``host:port``; ``None`` (logged) when it cannot listen,
    as the proxy still serves without it (an orchestrator's probes will notice)."""
    runner = web.AppRunner(make_admin_app(state), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as error:
        log.error(
            "admin listener %s unavailable (%s): /healthz, /readyz and /metrics are off; "
            "free the port or choose another with --admin",
            address,
            error.strerror or error,
        )
        await runner.cleanup()
        return None
    return runner
