"""Run the benchmarks side by side and write results.md and results.png.

    .venv/bin/python -m benchmarks.run            # full run, < 10 minutes on 2 cores
    .venv/bin/python -m benchmarks.run --quick    # about a minute, smaller numbers
    .venv/bin/python -m benchmarks.run --smoke --out /tmp/x   # a second or two, for tests

Full runs write to benchmarks/; quick and smoke runs to benchmarks/.runs/<mode>/
unless ``--out`` says otherwise, so they never overwrite the committed results.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from benchmarks import policybench, procstat, report, scenarios
from benchmarks import results as results_module
from benchmarks.load import wrk_binary
from benchmarks.results import RunResults
from benchmarks.scenarios import Services, Settings, log
from benchmarks.targets import Supervisor, cors_edge_available, nginx_binary

HERE = Path(__file__).resolve().parent
EDGE_KEYS = ("cors-edge", "cors-edge-unix", "cors-edge-ka", "cors-edge-idle", "cors-edge-log")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="about a minute: 2 rounds of 1 s")
    mode.add_argument(
        "--smoke", action="store_true", help="one tiny scenario, one round, every available loader"
    )
    parser.add_argument("--rounds", type=int, help="alternated rounds per scenario")
    parser.add_argument("--duration", type=float, help="seconds per load run")
    parser.add_argument("--connections", type=int, help="concurrent connections")
    parser.add_argument("--stream-mb", type=int, help="MiB per streamed transfer (1024)")
    parser.add_argument(
        "--loader",
        choices=["auto", "wrk", "aiohttp", "both"],
        default="auto",
        help="auto: wrk when installed, else the aiohttp load generator",
    )
    parser.add_argument(
        "--only",
        help="comma-separated scenarios to run (preflight, get, get-1conn, get-unix, "
        "get-keepalive, post-4k, streams, idle, policy); default all",
    )
    parser.add_argument("--out", type=Path, help="directory for results.md and results.png")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: re-render results.md/png from a raw results JSON",
    )
    parser.add_argument(
        "--wait-idle",
        type=float,
        help="wait up to this many seconds for the machine to be idle first "
        "(default 180 for full runs, 0 otherwise)",
    )
    parser.add_argument(
        "--edge-src",
        type=Path,
        default=HERE.parent,
        help="source tree to run cors-edge from (to A/B a proxy/ change); default this repo",
    )
    return parser.parse_args(argv)


def settings_for(args: argparse.Namespace) -> tuple[str, Settings]:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    wrk = wrk_binary() is not None
    if args.loader == "both" or (args.loader == "auto" and mode == "smoke"):
        loaders: tuple[str, ...] = ("wrk", "aiohttp") if wrk else ("aiohttp",)
    elif args.loader == "auto":
        loaders = ("wrk",) if wrk else ("aiohttp",)
    else:
        loaders = (args.loader,)
    base = {
        "full": Settings(3, 3.0, 64, 1.0, loaders, 1024, 1000, (10, 100, 1000), 1.0),
        "quick": Settings(2, 1.0, 64, 0.0, loaders, 64, 1000, (10, 100, 1000), 0.3),
        "smoke": Settings(1, 1.0, 8, 0.0, loaders, 1, 10, (), 0.0),
    }[mode]
    overrides = {
        "rounds": args.rounds,
        "duration": args.duration,
        "connections": args.connections,
        "stream_mb": args.stream_mb,
    }
    return mode, dataclasses.replace(base, **{k: v for k, v in overrides.items() if v})


def _version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    text = (done.stdout + done.stderr).strip().splitlines()
    return text[0] if text else ""


def describe(mode: str, settings: Settings, argv: list[str] | None) -> dict[str, str]:
    import aiohttp

    versions = {
        "v:Python": platform.python_version(),
        "v:aiohttp": aiohttp.__version__,
    }
    if wrk := wrk_binary():
        versions["v:wrk"] = _version([wrk, "--version"]).split(" [")[0].replace("wrk ", "")
    if nginx := nginx_binary():
        versions["v:nginx"] = _version([nginx, "-v"]).split("/")[-1]
    now = datetime.datetime.now(datetime.UTC)
    revision = _version(["git", "-C", str(HERE.parent), "rev-parse", "--short", "HEAD"])
    dirty = _version(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "proxy"])
    if dirty not in ("?", ""):
        revision += " (proxy/ has uncommitted changes)"
    return {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": str(os.cpu_count()),
        "mode": mode,
        "rounds": str(settings.rounds),
        "duration": f"{settings.duration:g}",
        "connections": str(settings.connections),
        "loaders": " + ".join(settings.loaders),
        "stream_mb": str(settings.stream_mb),
        "revision": revision,
        "command": " ".join(["python -m benchmarks.run", *(argv or sys.argv[1:])]),
        **versions,
    }


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def wait_until_idle(limit: float, busy_cores: float = 0.25) -> str:
    """Wait (at most ``limit`` s) until the machine uses under ``busy_cores`` for 2 s."""
    deadline = time.monotonic() + limit
    while True:
        before = procstat.machine_busy_seconds()
        time.sleep(2.0)
        busy = (procstat.machine_busy_seconds() - before) / 2.0
        if busy < busy_cores:
            return f"machine idle ({busy:.2f} cores busy) at the start"
        if time.monotonic() >= deadline:
            return f"machine still busy ({busy:.2f} cores used by others) after {limit:.0f} s wait"
        log(f"waiting for an idle machine: {busy:.2f} cores busy")


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def collect(
    mode: str,
    settings: Settings,
    services: Services,
    workdir: Path,
    results: RunResults,
    only: set[str] | None,
) -> None:
    def wanted(key: str) -> bool:
        return only is None or key in only

    if mode == "smoke":
        load_list = [scenarios.SMOKE_SCENARIO]
    else:
        load_list = [s for s in scenarios.load_scenarios() if wanted(s.key)]
        if wanted("idle"):
            results.memory = scenarios.run_idle(services, settings)
    for scenario in load_list:
        results.series += scenarios.run_load_scenario(scenario, services, settings, workdir)
    if mode == "smoke":
        return
    if wanted("streams") and services.get("cors-edge") is not None:
        results.series += scenarios.run_streams(services, settings)
    services.supervisor.close()  # the servers are done: quiet machine for the micro-benchmark
    if not wanted("policy"):
        return
    log("== policy decisions")
    for routes in settings.policy_sizes:
        try:
            timing = policybench.measure(routes, 100, settings.policy_budget_s)
        except ImportError as error:
            results.notes.append(f"policy micro-benchmark skipped: {error}")
            break
        log(
            f"  {routes} routes x 100 origins: {timing.mixed_us:.2f} µs/decision (mix), "
            f"{timing.worst_us:.2f} µs (refused, last route), load {timing.load_s:.2f} s"
        )
        results.policy.append(timing)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        rendered = results_module.load(json.loads(args.render.read_text()))
        if rendered.settings.get("mode") != "smoke":
            rendered.checks = report.judge(rendered)
        md, png = report.write(rendered, args.out or HERE)
        log(f"wrote {md} and {png} from {args.render}")
        return 0
    mode, settings = settings_for(args)
    out = args.out or (HERE if mode == "full" else HERE / ".runs" / mode)
    signal.signal(signal.SIGTERM, _terminate)
    _raise_nofile(settings.idle_connections + 4096)
    results = RunResults(settings=describe(mode, settings, argv))
    if args.edge_src.resolve() != HERE.parent:
        results.settings["revision"] += f"; cors-edge run from {args.edge_src}"
    wait = args.wait_idle if args.wait_idle is not None else (180.0 if mode == "full" else 0.0)
    if wait > 0:
        results.notes.append(wait_until_idle(wait))
    workdir = Path(tempfile.mkdtemp(prefix="cors-edge-bench-"))
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    try:
        with Supervisor(workdir, args.edge_src.resolve()) as supervisor:
            services = Services(supervisor)
            if mode != "smoke" and not cors_edge_available(args.edge_src):
                for key in EDGE_KEYS:
                    services.unavailable[key] = "cors-edge does not run yet"
                results.notes.append("cors-edge could not be started: its rows are missing")
            only = set(args.only.split(",")) if args.only else None
            collect(mode, settings, services, workdir, results, only)
            for key, why in services.unavailable.items():
                results.notes.append(f"{key} not measured: {why}")
    finally:
        if args.keep:
            log(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    results.settings["elapsed"] = f"{elapsed:.0f} s"
    results.notes.append(f"whole run took {elapsed:.0f} s")
    results.notes.append(
        f"1-minute load average {load_before:.2f} before the run, {os.getloadavg()[0]:.2f} "
        "after: anything else running on the machine shows up as spread between rounds"
    )
    if mode != "smoke":
        results.checks = report.judge(results)
        if "aiohttp" in settings.loaders:
            results.notes.append(
                "the aiohttp load generator is a single Python process: it saturates long before "
                "wrk, so the fastest contenders (nginx, bare aiohttp, preflights) are loader-bound"
            )
    md, png = report.write(results, out)
    if mode == "full" and args.out is None:  # the committed results: the README shows them
        readme = HERE.parent / "README.md"
        text = readme.read_text(encoding="utf-8")
        readme.write_text(report.replace_readme_block(text, report.readme_block(results)))
    raw = out / ".runs" / f"results-{mode}-{int(time.time())}.json"
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps(dataclasses.asdict(results), indent=1, default=str))
    print(md.read_text(encoding="utf-8"))
    log(f"wrote {md} and {png} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
