"""Helpers for the `serve --workers N` tests: a real `cors-edge serve --workers 2` in
front of the real legacy app under gunicorn, its admin listener, and traffic."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.ops.harness import (
    ORIGIN_A,
    Variant,
    admin_get,
)
from tests.support import Edge, EdgeFactory

WORKERS = 2


def start_fleet(factory: EdgeFactory, variant: Variant, *extra: str) -> Edge:
    edge = factory(variant.text(), "--workers", str(WORKERS), *extra)
    for index in range(WORKERS):
        edge.stderr.wait_for(rf"worker {index} .*serving on the parent's listener", 20)
    return edge


async def readyz(edge: Edge) -> tuple[int, dict[str, object]]:
    status, text = await admin_get(edge, "/readyz")
    return status, json.loads(text)


async def wait_ready(edge: Edge, generation: int, timeout: float = 20.0) -> dict[str, object]:
    async def poll() -> dict[str, object]:
        while True:
            status, body = await readyz(edge)
            if status == 200 and body["generation"] == generation:
                return body
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), timeout)


def worker_pids(body: dict[str, object]) -> list[int]:
    workers = body["workers"]
    assert isinstance(workers, list)
    return [int(w["pid"]) for w in workers]


async def metric_total(edge: Edge, name: str) -> float:
    _, text = await admin_get(edge, "/metrics")
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


async def get_many(base: str, count: int, clients: int = 8) -> list[int]:
    """``count`` GETs from ``clients`` concurrent clients, each on fresh connections."""
    statuses: list[int] = []

    async def client(share: int) -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
            for _ in range(share):
                async with s.get(base + "/api/ping", headers={"Origin": ORIGIN_A}) as response:
                    await response.read()
                    statuses.append(response.status)

    shares = [count // clients + (1 if i < count % clients else 0) for i in range(clients)]
    await asyncio.gather(*(client(share) for share in shares))
    return statuses
