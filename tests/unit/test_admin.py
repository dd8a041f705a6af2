"""proxy/admin.py: liveness, readiness and metrics, and the admin listener itself."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter

from proxy.admin import AdminState, make_admin_app, start_admin
from proxy.forward import Upstream
from proxy.loader import load_policy_text
from proxy.policy import Limits, Timeouts
from proxy.records import PolicyHolder

from .inprocess import closed_port

CONFIG = load_policy_text("routes:\n  - path: /api/**\n    origins: '*'\n")


@pytest.fixture
async def listening() -> AsyncIterator[str]:
    """An upstream address that accepts connections."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


async def client_for(state: AdminState) -> TestClient:  # type: ignore[type-arg]
    client = TestClient(TestServer(make_admin_app(state)))
    await client.start_server()
    return client


async def test_healthz_and_the_states_of_readyz(listening: str) -> None:
    holder = PolicyHolder(CONFIG)
    state = AdminState(holder, Upstream(listening, Timeouts(), Limits()))
    client = await client_for(state)
    try:
        assert (await client.get("/healthz")).status == 200
        starting = await client.get("/readyz")
        assert (starting.status, (await starting.json())["reason"]) == (503, "starting")
        state.ready = True
        holder.swap(CONFIG)
        ready = await client.get("/readyz")
        assert ready.status == 200
        assert await ready.json() == {
            "ready": True,
            "generation": 2,
            "sha256": CONFIG.sha256,
            "source": CONFIG.source,
        }
        state.draining = True
        draining = await client.get("/readyz")
        assert (draining.status, (await draining.json())["reason"]) == (503, "draining")
    finally:
        await client.close()


async def test_readyz_says_when_the_upstream_is_down() -> None:
    dead = Upstream(f"http://127.0.0.1:{closed_port()}", Timeouts(), Limits())
    state = AdminState(PolicyHolder(CONFIG), dead, ready=True)
    client = await client_for(state)
    try:
        answer = await client.get("/readyz")
        assert answer.status == 503
        assert (await answer.json())["reason"] == "upstream not accepting connections"
    finally:
        await client.close()


async def test_metrics_come_from_the_states_registry(listening: str) -> None:
    registry = CollectorRegistry()
    Counter("cors_edge_test_marker", "a marker", registry=registry).inc()
    state = AdminState(PolicyHolder(CONFIG), Upstream(listening, Timeouts(), Limits()))
    state.registry = registry
    client = await client_for(state)
    try:
        answer = await client.get("/metrics")
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain; version=")
        assert "cors_edge_test_marker_total 1.0" in await answer.text()
    finally:
        await client.close()


async def test_a_busy_admin_port_is_logged_not_fatal(
    listening: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = AdminState(PolicyHolder(CONFIG), Upstream(listening, Timeouts(), Limits()))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level(logging.ERROR, logger="cors_edge"):
            assert await start_admin(state, "127.0.0.1", port, f"127.0.0.1:{port}") is None
    assert f"admin listener 127.0.0.1:{port} unavailable" in caplog.text
    runner = await start_admin(state, "127.0.0.1", 0, "127.0.0.1:0")
    assert runner is not None and runner.addresses
    await runner.cleanup()
