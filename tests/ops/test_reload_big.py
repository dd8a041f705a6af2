"""A big policy compiles off the event loop: the old policy keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import signal
import time

import psutil

from tests.e2e.http import fetch
from tests.support import EdgeFactory

OLD = "http://old.test"
NEW = "http://new.test"
SMALL = f"routes:\n  - path: /api/**\n    origins: [{OLD}]\n"


def big_policy(origin: str, routes: int = 1000, origins: int = 100) -> str:
    lines = ["routes:"]
    for index in range(routes):
        lines += [f"  - path: /svc{index}/**", "    origins:"]
        lines += [f"      - https://app{o}.tenant{index}.example.com" for o in range(origins)]
    lines += ["  - path: /api/**", f"    origins: [{origin}]"]
    return "\n".join(lines) + "\n"


async def test_requests_are_answered_while_a_big_policy_compiles(
    edge_factory: EdgeFactory,
) -> None:
    edge = edge_factory(SMALL)
    process = psutil.Process(edge.process.pid)
    edge.config.write_text(big_policy(NEW))
    idle = process.cpu_times()
    edge.signal(signal.SIGHUP)
    # The compile is under way once the (otherwise idle) edge burns CPU; a cap only as a
    # safety net.
    deadline = time.monotonic() + 30
    while sum(process.cpu_times()[:2]) - sum(idle[:2]) < 0.05:
        assert time.monotonic() < deadline, "the edge never started compiling"
        await asyncio.sleep(0.005)
    during = [
        (await fetch("OPTIONS", edge.url + "/api/items", _preflight(OLD))).status for _ in range(5)
    ]
    # Answered while compiling: the new generation was not in force yet.
    compiled = r"reload \(SIGHUP\): policy .* generation 2"
    assert "generation 2" not in edge.stderr.text()
    await asyncio.to_thread(edge.stderr.wait_for, compiled, 60)
    assert during == [204] * 5, "the old policy must keep answering while the new compiles"
    assert (await fetch("OPTIONS", edge.url + "/api/items", _preflight(OLD))).status == 403
    assert (await fetch("OPTIONS", edge.url + "/api/items", _preflight(NEW))).status == 204


def _preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "GET"}
