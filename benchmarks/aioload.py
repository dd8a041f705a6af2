"""The fallback load generator, used when ``wrk`` is absent: aiohttp on uvloop.

    python -m benchmarks.aioload SPEC.json

``SPEC.json`` holds a :class:`benchmarks.load.LoadSpec` (body as a latin-1 string).
``connections`` workers each loop over one keep-alive connection until the duration
is up; the last line printed is a JSON object with ``requests``, ``seconds``,
``p50_ms``, ``p99_ms`` and ``errors`` (transport errors and non-2xx/3xx answers).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import aiohttp

from benchmarks.load import LoadSpec


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


async def drive(spec: LoadSpec) -> dict[str, float | int]:
    url, method, headers = spec.url, spec.method, spec.headers
    body = spec.body or None
    connections, duration = spec.connections, spec.duration
    latencies: list[float] = []
    errors = 0

    async def worker(session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                async with session.request(method, url, headers=headers, data=body) as response:
                    await response.read()
                    if response.status >= 400:
                        errors += 1
            except (TimeoutError, aiohttp.ClientError, OSError):
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, skip_auto_headers=("User-Agent",)
    ) as session:
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(worker(session, deadline) for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as handle:
        raw = json.load(handle)
    raw["body"] = raw["body"].encode("latin-1")
    spec = LoadSpec(**raw)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(drive(spec))))


if __name__ == "__main__":
    main()
