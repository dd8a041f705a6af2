"""Micro-benchmark of the policy engine: decision cost against the size of the table.

A policy document with ``routes`` glob routes (``/svc<i>/**``) of ``origins`` origins
each (exact ones, a few ``*.`` subdomain wildcards and a few regexes) is built in
memory, loaded with the proxy's own loader and asked for decisions by the proxy's
own engine, exactly as the server does per request.

- ``mixed``: preflights and actual requests to random routes from allowed exact,
  wildcard and regex origins, plus refused ones.
- ``worst``: a refused origin on the last route (every origin rule is tried).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from benchmarks.results import PolicyTiming

WILDCARDS = 5
REGEXES = 5


def policy_text(routes: int, origins: int) -> str:
    lines = [
        "defaults:",
        "  methods: [GET, HEAD, POST, PUT, DELETE]",
        "  allow_headers: [Content-Type, Authorization]",
        "routes:",
    ]
    exact = max(0, origins - WILDCARDS - REGEXES)
    for route in range(routes):
        lines.append(f"  - path: /svc{route}/**")
        lines.append("    origins:")
        lines += [f"      - https://app{n}.tenant{route}.example.com" for n in range(exact)]
        lines += [f"      - https://*.w{n}.tenant{route}.example.org" for n in range(WILDCARDS)]
        lines += [
            f"      - regex: ^https://pr-[0-9]+\\.r{n}\\.tenant{route}\\.example\\.net$"
            for n in range(REGEXES)
        ]
    return "\n".join(lines) + "\n"


Request = tuple[str, str, tuple[str, ...], dict[str, str]]


def requests(routes: int, origins: int, count: int, seed: int = 7) -> list[Request]:
    """A reproducible mix of preflights and actual requests."""
    rng = random.Random(seed)
    exact = max(1, origins - WILDCARDS - REGEXES)
    made: list[Request] = []
    for n in range(count):
        route = rng.randrange(routes)
        kind = (n // 2) % 4  # allowed exact, wildcard, regex; refused
        if kind == 0:
            origin = f"https://app{rng.randrange(exact)}.tenant{route}.example.com"
        elif kind == 1:
            origin = f"https://deep.x.w{rng.randrange(WILDCARDS)}.tenant{route}.example.org"
        elif kind == 2:
            origin = f"https://pr-{n}.r{rng.randrange(REGEXES)}.tenant{route}.example.net"
        else:
            origin = f"https://evil{n}.example.com"
        path = f"/svc{route}/items/{n % 97}"
        if n % 2:
            made.append(("GET", path, (origin,), {}))
        else:
            preflight = {"request_method": "PUT", "request_headers": "content-type"}
            made.append(("OPTIONS", path, (origin,), preflight))
    return made


def _time_decisions(
    decide: Callable[..., Any], policies: Any, batch: list[Request], budget_s: float
) -> float:
    """Microseconds per decision, looping over ``batch`` until ``budget_s`` is spent."""
    done = 0
    started = time.perf_counter()
    while True:
        for method, path, origin_values, extra in batch:
            decide(policies, method, path, origin_values, **extra)
        done += len(batch)
        elapsed = time.perf_counter() - started
        if elapsed >= budget_s:
            return elapsed / done * 1e6


def measure(routes: int, origins: int, budget_s: float) -> PolicyTiming:
    from proxy.cors import decide
    from proxy.loader import load_policy_text

    text = policy_text(routes, origins)
    started = time.perf_counter()
    policies = load_policy_text(text, f"<bench {routes}x{origins}>")
    load_s = time.perf_counter() - started
    table = policies.routes  # the engine decides on the route table, as the server does
    mixed = _time_decisions(decide, table, requests(routes, origins, 2000), budget_s)
    worst_path = f"/svc{routes - 1}/items/1"
    worst: list[Request] = [("GET", worst_path, ("https://nobody.example.invalid",), {})] * 200
    worst_us = _time_decisions(decide, table, worst, budget_s / 2)
    return PolicyTiming(routes, origins, mixed, worst_us, load_s)
