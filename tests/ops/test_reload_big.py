"""A big policy compiles off the event loop: the old policy keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import signal

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
    edge.config.write_text(big_policy(NEW))
    edge.signal(signal.SIGHUP)
    await asyncio.sleep(0.1)  # the loop has seen the signal; compiling takes far longer
    during = [
        (await fetch("OPTIONS", edge.url + "/api/items", _preflight(OLD))).status for _ in range(5)
    ]
    await asyncio.to_thread(edge.stderr.wait_for, r"reload \(SIGHUP\): policy .* generation 2")
    assert during == [204] * 5, "the old policy must keep answering while the new compiles"
    assert (await fetch("OPTIONS", edge.url + "/api/items", _preflight(OLD))).status == 403
    assert (await fetch("OPTIONS", edge.url + "/api/items", _preflight(NEW))).status == 204


def _preflight(origin: str) -> dict[str, str]:
    return {"Origin": origin, "Access-Control-Request-Method": "GET"}
