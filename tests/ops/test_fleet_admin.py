"""The admin listener of `serve --workers N`: /metrics sums the workers, /readyz speaks
for the whole."""

from __future__ import annotations

import os
import signal

from tests.ops.fleet_harness import (
    get_many,
    metric_total,
    readyz,
    start_fleet,
    wait_ready,
    worker_pids,
)
from tests.ops.harness import (
    ORIGIN_A,
    Variant,
    admin_get,
    wait_log,
)
from tests.support import EdgeFactory


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


async def test_readyz_is_not_ready_while_a_worker_is_down(edge_factory: EdgeFactory) -> None:
    edge = start_fleet(edge_factory, Variant(ORIGIN_A, 600), "--no-access-log")
    body = await wait_ready(edge, 1)
    victim = worker_pids(body)[0]
    os.kill(victim, signal.SIGSTOP)  # alive but unable to answer: not ready
    try:
        status, body = await readyz(edge)
        assert status == 503
        assert body["reason"] == "worker 0 not ready"
    finally:
        os.kill(victim, signal.SIGCONT)
    await wait_ready(edge, 1)
    _, text = await admin_get(edge, "/metrics")
    assert 'cors_edge_worker_ready{worker="0"} 1.0' in text
    assert 'cors_edge_worker_ready{worker="1"} 1.0' in text
