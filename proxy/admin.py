"""The admin listener: liveness, readiness and metrics, never on the public port.

- ``/healthz``: 200 while the process lives (the event loop answers).
- ``/readyz``: 200 when a policy is loaded, the edge is not draining and the
  upstream accepts a TCP connection; 503 otherwise, with the reason.
- ``/metrics``: Prometheus text format from cors-edge's own registry
  (see :mod:`proxy.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from .forward import Upstream
    from .server import PolicyHolder


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
        policies = state.holder.current
        return web.json_response(
            {
                "ready": True,
                "generation": state.holder.generation,
                "sha256": policies.sha256,
                "source": policies.source,
            }
        )

    async def metrics(request: web.Request) -> web.Response:
        body = generate_latest(state.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
