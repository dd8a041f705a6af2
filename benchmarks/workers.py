"""``serve --workers 2`` against ``--workers 1``, side by side in one alternated run.

The upstream is cheap and keep-alive, so that the proxy, not the application, is what
one core limits: nginx answering a fixed ``pong`` when nginx is on PATH (about 8 µs of
CPU per request), else the bare aiohttp ``web.Server`` of ``bare_server.py`` (about
35 µs, which on 2 cores leaves a second worker little room).
Rounds alternate the two contenders (1 2 1 2 ...); the table shows medians with
[min-max] and the ratio of the medians. The result replaces the block between the
``workers-benchmark`` markers in the README.

    .venv/bin/python -m benchmarks.workers [--rounds 5] [--duration 5] [--connections 64]

wrk is used when it is on PATH; the aiohttp loader otherwise (a Python loader takes a
core of its own on a 2-core machine, so the ratio then says less; the table names it).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
from pathlib import Path

from benchmarks.load import LoadSpec, run_load, wrk_binary
from benchmarks.targets import HOST, REPO, Service, Supervisor, free_port, nginx_binary

ORIGIN = "http://localhost:3000"
POLICY = """\
routes:
  - path: /**
    origins: [http://localhost:3000]
"""
README = REPO / "README.md"
MARKERS = ("<!-- workers-benchmark:start -->", "<!-- workers-benchmark:end -->")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--no-readme", action="store_true", help="print only")
    return parser.parse_args(argv)


NGINX_PONG = """\
daemon off;
master_process off;
worker_processes 1;
pid {prefix}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  server {{
    listen {host}:{port};
    location / {{ return 200 "pong"; }}
  }}
}}
"""


def cheap_upstream(services: Supervisor, workdir: Path) -> tuple[Service, str]:
    binary = nginx_binary()
    if binary is None:
        return services.bare_aiohttp("upstream", "lowlevel"), "bare aiohttp web.Server"
    prefix = workdir / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_PONG.format(prefix=prefix, host=HOST, port=port))
    argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
    return services.spawn("upstream", argv, port=port), "nginx (fixed pong)"


def measure(args: argparse.Namespace, workdir: Path) -> tuple[str, dict[int, list[float]]]:
    loader = "wrk" if wrk_binary() else "aiohttp"
    config = workdir / "policies.yaml"
    config.write_text(POLICY)
    results: dict[int, list[float]] = {1: [], 2: []}
    with Supervisor(workdir) as services:
        upstream, args.upstream_kind = cheap_upstream(services, workdir)
        edges = {
            count: services.cors_edge(
                f"cors-edge-w{count}", upstream, config, extra_args=("--workers", str(count))
            )
            for count in results
        }
        for _ in range(args.rounds):
            for count, edge in edges.items():
                spec = LoadSpec(
                    url=edge.base_url + "/api/ping",
                    headers={"Origin": ORIGIN},
                    connections=args.connections,
                    duration=args.duration,
                )
                outcome = run_load(spec, workdir, loader)
                if outcome.errors:
                    raise RuntimeError(f"--workers {count}: {outcome.errors} errors")
                results[count].append(outcome.rps)
    return loader, results


def render(args: argparse.Namespace, loader: str, results: dict[int, list[float]]) -> str:
    one, two = (statistics.median(results[n]) for n in (1, 2))
    rows = [
        f"| `--workers {n}` | {statistics.median(r):,.0f} [{min(r):,.0f}-{max(r):,.0f}] |"
        for n, r in results.items()
    ]
    return "\n".join(
        [
            f"`python -m benchmarks.workers` ({args.rounds} alternated rounds of "
            f"{args.duration:g} s, {args.connections} connections, loader {loader}, "
            f"keep-alive upstream {args.upstream_kind}, this 2-core machine):",
            "",
            "| cors-edge | requests/s, median [min-max] |",
            "|---|---|",
            *rows,
            "",
            f"`--workers 2` ÷ `--workers 1`: **{two / one:.2f}x** (target >= 1.3x).",
        ]
    )


def write_readme(block: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = MARKERS
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(text):
        raise RuntimeError(f"README.md has no {start} ... {end} block")
    README.write_text(pattern.sub(lambda _: f"{start}\n{block}\n{end}", text), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cors-edge-workers-") as work:
        loader, results = measure(args, Path(work))
    block = render(args, loader, results)
    print(block)
    if not args.no_readme:
        write_readme(block)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
