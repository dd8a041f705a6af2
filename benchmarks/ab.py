"""A/B two cors-edge source trees side by side, to check a proxy/ change pays off.

    .venv/bin/python -m benchmarks.ab /path/to/other/checkout [--rounds 4] [--duration 2]

Both edges run at once in front of the same gunicorn (one sync worker) and are
driven alternately (A B A B ...) through the given scenarios; the table shows the
medians. ``/path/to/other/checkout`` must hold a ``proxy/`` package.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.load import LoadSpec, wrk_binary
from benchmarks.results import Sample
from benchmarks.scenarios import POLICY_FILE, load_scenarios, measure_load
from benchmarks.targets import REPO, Service, Supervisor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("other", type=Path, help="source tree B (A is this repository)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--scenarios", default="preflight,get,get-1conn")
    args = parser.parse_args()
    loader = "wrk" if wrk_binary() else "aiohttp"
    wanted = args.scenarios.split(",")
    chosen = [s for s in load_scenarios() if s.key in wanted]
    workdir = Path(tempfile.mkdtemp(prefix="cors-edge-ab-"))
    print("| scenario | edge | req/s | p50 ms | CPU µs/req | upstream CPU µs/req |")
    print("|---|---|---|---|---|---|")
    try:
        with Supervisor(workdir) as supervisor:
            flask = supervisor.gunicorn("flask", "examples.legacy_app:app")
            edges: dict[str, Service] = {}
            for name, src in (("A (this repo)", REPO), (f"B ({args.other})", args.other)):
                supervisor.edge_src = src.resolve()
                edges[name] = supervisor.cors_edge(f"edge-{len(edges)}", flask, POLICY_FILE)
            for scenario in chosen:
                samples: dict[str, list[Sample]] = {name: [] for name in edges}
                for turn in range(args.rounds):
                    # A B, then B A: the edge that went first in every round came out
                    # ~7% dearer per request, whichever tree it ran (a loaded box).
                    order = list(edges.items())
                    for name, edge in order if turn % 2 == 0 else order[::-1]:
                        spec = LoadSpec(
                            url=edge.base_url + scenario.path,
                            method=scenario.method,
                            headers=scenario.headers,
                            body=scenario.body,
                            connections=scenario.connections or args.connections,
                            duration=args.duration,
                        )
                        samples[name].append(measure_load(edge, flask, spec, workdir, loader))
                for name, runs in samples.items():
                    print(
                        f"| {scenario.key} | {name} | {_median(runs, 'rps'):,.0f} "
                        f"| {_median(runs, 'p50_ms'):.2f} | {_median(runs, 'cpu_us'):.1f} "
                        f"| {_median(runs, 'upstream_cpu_us'):.1f} |"
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _median(samples: list[Sample], name: str) -> float:
    return statistics.median(float(getattr(sample, name) or 0.0) for sample in samples)


if __name__ == "__main__":
    sys.exit(main())
