"""One worker of `serve --workers N` (proxy/worker.py): it never outlives its parent
and takes its policy only from the parent."""

from __future__ import annotations

import asyncio
import os
import signal

from tests.ops.fleet_harness import (
    start_fleet,
    wait_ready,
    worker_pids,
)
from tests.ops.harness import (
    ORIGIN_A,
    ORIGIN_B,
    Variant,
    check_visible,
    wait_log,
)
from tests.support import EdgeFactory


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


async def test_a_sighup_sent_to_one_worker_changes_nothing(edge_factory: EdgeFactory) -> None:
    initial = Variant(ORIGIN_A, 600)
    edge = start_fleet(edge_factory, initial, "--no-access-log")
    pids = worker_pids(await wait_ready(edge, 1))
    edge.config.write_text(Variant(ORIGIN_B, 300, revision=1).text())
    os.kill(pids[1], signal.SIGHUP)
    await wait_log(edge, r"worker 1 .*SIGHUP ignored: send it to the parent")
    # Worker 1 still serves generation 1, like worker 0: no worker moves alone.
    body = await wait_ready(edge, 1)
    workers = body["workers"]
    assert isinstance(workers, list)
    assert [w["generation"] for w in workers] == [1, 1]
    assert worker_pids(body) == pids
    await check_visible(edge.url, initial)
