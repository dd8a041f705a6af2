"""`serve --workers N`: one listener, N real worker processes, one supervising parent.

Every test runs a real `cors-edge serve --workers 2` in front of the real legacy app
under gunicorn, and sends real signals to the parent (and SIGKILL to a worker)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

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


async def test_both_workers_take_load(edge_factory: EdgeFactory) -> None:
    variant = Variant(ORIGIN_A, 600)
    edge = start_fleet(edge_factory, variant)
    statuses = await get_many(edge.url, 400)
    assert statuses == [200] * 400
    edge.stdout.wait_for(r'"worker":', 5)
    workers = {line.get("worker") for line in edge.access_log()}
    assert workers == {0, 1}, workers
    # Every line names its worker, and the two shares are both real.
    shares = [sum(1 for line in edge.access_log() if line.get("worker") == w) for w in (0, 1)]
    assert min(shares) >= 20, shares


async def test_metrics_sum_the_workers_and_survive_a_killed_worker(
    edge_factory: EdgeFactory,
) -> None:
    edge = start_fleet(edge_factory, Variant(ORIGIN_A, 600), "--no-access-log")
    first = await get_many(edge.url, 150)
    assert first == [200] * 150
    assert await metric_total(edge, "cors_edge_requests_total") == 150
    body = await wait_ready(edge, 1)
    victim = worker_pids(body)[0]
    os.kill(victim, signal.SIGKILL)
    await wait_log(edge, rf"worker 0 \(pid {victim}\) exited with signal SIGKILL")
    body = await wait_ready(edge, 1)
    assert victim not in worker_pids(body)
    second = await get_many(edge.url, 50)
    assert second == [200] * 50
    # The dead worker's counts are kept, the replacement's added: none lost, none twice.
    assert await metric_total(edge, "cors_edge_requests_total") == 200
    assert await metric_total(edge, "cors_edge_request_duration_seconds_count") == 200
    assert await metric_total(edge, "cors_edge_worker_restarts_total") == 1


async def test_killed_worker_is_replaced_while_requests_keep_succeeding(
    edge_factory: EdgeFactory,
) -> None:
    edge = start_fleet(edge_factory, Variant(ORIGIN_A, 600), "--no-access-log")
    body = await wait_ready(edge, 1)
    victim = worker_pids(body)[1]
    clients = 4
    traffic = Traffic(edge.url, Variant(ORIGIN_A, 600), clients=clients, minimum=600)
    runner = asyncio.create_task(traffic.run())
    await traffic.wait_for_requests(100)
    os.kill(victim, signal.SIGKILL)
    await wait_log(edge, r"worker 1 started \(pid \d+\)")
    after_kill = traffic.done
    await wait_ready(edge, 1)
    await traffic.wait_for_requests(200)
    traffic.finish.set()
    await runner
    # Only a request the killed worker held at that instant can fail (one per client
    # at most); every request from the restart on succeeded, under the one policy.
    assert len(traffic.failures) <= clients, traffic.failures
    assert all("matches none" not in failure for failure in traffic.failures)
    assert traffic.done - after_kill >= 200


async def test_sighup_under_load_moves_every_worker_to_the_new_generation(
    edge_factory: EdgeFactory,
) -> None:
    initial = Variant(ORIGIN_A, 600)
    edge = start_fleet(edge_factory, initial, "--no-access-log")
    traffic = Traffic(edge.url, initial, minimum=800)
    runner = asyncio.create_task(traffic.run())
    await traffic.wait_for_requests(100)
    generation = 1
    for revision, variant in enumerate((Variant(ORIGIN_B, 300), Variant(ORIGIN_A, 60)), 1):
        variant = Variant(variant.origin, variant.max_age, revision=revision)
        traffic.announce(variant)
        edge.config.write_text(variant.text())
        edge.signal(signal.SIGHUP)
        generation += 1
        await wait_log(
            edge,
            rf"reload \(SIGHUP\): policy {re.escape(str(edge.config))} generation {generation} "
            rf"sha256 {variant.sha256()}, on all {WORKERS} workers",
        )
        traffic.confirm()
        body = await wait_ready(edge, generation)
        workers = body["workers"]
        assert isinstance(workers, list)
        assert [w["generation"] for w in workers] == [generation] * WORKERS
        await check_visible(edge.url, variant)
        await traffic.wait_for_requests(100)
    traffic.finish.set()
    await runner
    assert traffic.failures == []
    assert await metric_total(edge, "cors_edge_policy_reloads_total") == 2


async def test_a_bad_file_leaves_every_worker_on_the_old_generation(
    edge_factory: EdgeFactory,
) -> None:
    initial = Variant(ORIGIN_A, 600)
    edge = start_fleet(edge_factory, initial, "--no-access-log")
    edge.config.write_text(INVALID_POLICY)
    edge.signal(signal.SIGHUP)
    line = await wait_log(edge, r"reload \(SIGHUP\) refused.*")
    assert f"{edge.config}:{INVALID_LINE_KEY}" in line[0]
    assert "keeping generation 1" in line[0]
    body = await wait_ready(edge, 1)
    workers = body["workers"]
    assert isinstance(workers, list)
    assert [w["generation"] for w in workers] == [1] * WORKERS
    await check_visible(edge.url, initial)
    _, text = await admin_get(edge, "/metrics")
    assert 'cors_edge_policy_reloads_total{result="error"} 1.0' in text


async def test_sigterm_drains_in_flight_requests_across_workers_and_exits_0(
    roomy_edge_factory: EdgeFactory,
) -> None:
    policy = Variant(ORIGIN_A, 600).text().replace("read: 5", "read: 15")
    edge = roomy_edge_factory(policy, "--workers", str(WORKERS), "--grace", "15")
    for index in range(WORKERS):
        edge.stderr.wait_for(rf"worker {index} .*serving on the parent's listener", 20)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:

        async def slow() -> int:
            async with s.get(edge.url + "/api/slow?seconds=2", headers={"Origin": ORIGIN_A}) as r:
                await r.read()
                return r.status

        requests = [asyncio.create_task(slow()) for _ in range(16)]

        # Both workers hold some of them (the parent reports each worker's in-flight count).
        async def spread() -> None:
            while True:
                _, body = await readyz(edge)
                workers = body["workers"]
                assert isinstance(workers, list)
                held = [int(w["in_flight"]) for w in workers]
                if sum(held) == 16:
                    assert all(held), f"one worker holds every request: {held}"
                    return
                await asyncio.sleep(0.02)

        await asyncio.wait_for(spread(), 10)
        edge.signal(signal.SIGTERM)
        assert await asyncio.gather(*requests) == [200] * 16
    assert await asyncio.to_thread(edge.process.wait, 20) == 0
    for index in range(WORKERS):
        assert any(f"worker {index} " in line and "stopped" in line for line in edge.stderr.lines)
    assert not any("cutting" in line for line in edge.stderr.lines), edge.stderr.lines


async def test_workers_do_not_outlive_a_killed_parent(edge_factory: EdgeFactory) -> None:
    edge = start_fleet(edge_factory, Variant(ORIGIN_A, 600), "--no-access-log")
    pids = worker_pids(await wait_ready(edge, 1))
    edge.process.kill()  # SIGKILL: the parent cannot tell anyone
    edge.process.wait(10)

    def gone(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A worker that exited but is not yet reaped by init still counts as gone.
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].startswith("Z")

    async def all_gone() -> None:
        while not all(gone(pid) for pid in pids):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(all_gone(), 15)
