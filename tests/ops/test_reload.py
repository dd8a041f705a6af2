"""SIGHUP reloads under load: no request fails, each answer is the old or the new
policy's, a valid file is visible after its reload, an invalid one is refused with
file:line key and the old policy keeps serving."""

from __future__ import annotations

import asyncio
import re
import signal
import time

import aiohttp

from tests.ops.harness import (
    INVALID_LINE_KEY,
    INVALID_POLICY,
    ORIGIN_A,
    ORIGIN_B,
    Traffic,
    Variant,
    admin_get,
    check_visible,
    wait_log,
)
from tests.support import Edge, EdgeFactory


async def test_sighup_reloads_under_load(edge_factory: EdgeFactory) -> None:
    initial = Variant(ORIGIN_A, 600, revision=0)
    edge = edge_factory(initial.text(), "--no-access-log")
    config = edge.config
    traffic = Traffic(edge.url, initial)
    runner = asyncio.create_task(traffic.run())
    started = time.monotonic()
    plan: list[Variant | None] = [
        Variant(ORIGIN_B, 300, revision=1),
        Variant(ORIGIN_A, 600, revision=2),
        None,  # the invalid file
        Variant(ORIGIN_B, 120, revision=3),
        Variant(ORIGIN_A, 60, revision=4),
    ]
    generation = 1
    try:
        await traffic.wait_for_requests(200)
        for step in plan:
            if step is None:
                config.write_text(INVALID_POLICY)
                edge.signal(signal.SIGHUP)
                line = await wait_log(edge, r"reload \(SIGHUP\) refused.*")
                assert f"{config}:{INVALID_LINE_KEY}" in line[0]
                assert f"keeping generation {generation}" in line[0]
                await check_visible(edge.url, traffic.states[-1])
            else:
                traffic.announce(step)
                config.write_text(step.text())
                edge.signal(signal.SIGHUP)
                generation += 1
                await wait_log(
                    edge,
                    rf"reload \(SIGHUP\): policy {re.escape(str(config))} "
                    rf"generation {generation} sha256 {step.sha256()}",
                )
                traffic.confirm()
                await check_visible(edge.url, step)
            await traffic.wait_for_requests(500)
        # One more SIGHUP without a change: nothing is swapped.
        edge.signal(signal.SIGHUP)
        await wait_log(edge, rf"reload \(SIGHUP\): unchanged, keeping generation {generation}")
    finally:
        traffic.finish.set()
        await runner
    elapsed = time.monotonic() - started
    print(
        f"\n{traffic.done} requests from {traffic.clients} clients in {elapsed:.1f} s, "
        f"{len(traffic.failures)} failures, answers by policy state {traffic.by_state}"
    )
    assert traffic.failures == []
    assert traffic.done >= 2000
    # Every state in the plan answered some of the traffic.
    assert set(traffic.by_state) == set(range(len(traffic.states)))
    status, body = await admin_get(edge, "/readyz")
    assert status == 200
    assert f'"generation": {generation}' in body
    assert edge.process.poll() is None


async def test_in_flight_request_keeps_the_policy_it_started_with(
    edge_factory: EdgeFactory,
) -> None:
    edge = edge_factory(Variant(ORIGIN_A, 600).text(), "--no-access-log")
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(
            session.get(edge.url + "/api/slow?seconds=1", headers={"Origin": ORIGIN_A})
        )
        await wait_in_flight_one(edge)
        new = Variant(ORIGIN_B, 300, revision=1)
        edge.config.write_text(new.text())
        edge.signal(signal.SIGHUP)
        await wait_log(edge, r"reload \(SIGHUP\): policy \S+ generation 2")
        await check_visible(edge.url, new)  # new requests: origin A is refused now
        response = await slow
        async with response:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == ORIGIN_A
            assert await response.json() == {"slept": 1.0}


async def wait_in_flight_one(edge: Edge) -> None:
    """Until the edge has the slow request in flight (per /metrics)."""
    for _ in range(500):
        _, text = await admin_get(edge, "/metrics")
        if "cors_edge_in_flight_requests 1.0" in text:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the slow request never reached the edge")
