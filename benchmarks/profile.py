"""Profile cors-edge under load with py-spy and print where its CPU goes.

    .venv/bin/python -m benchmarks.profile preflight|get|get-ka|post-4k|download [--seconds 8]

Starts the same processes as the benchmark (gunicorn upstream, cors-edge without an
access log unless ``--access-log``), drives the scenario with wrk (or the aiohttp
loader), records cors-edge with ``py-spy record --format raw`` and prints the
functions with the most samples: own ("self") and including callees ("total").
The raw collapsed stacks are kept next to the report for flame graphs. Last, the own
samples per component (kernel system calls, the collector, aiohttp, cors-edge's modules):
with ``--native`` the system calls and the collector show as themselves, without it
they hide in the Python frame that made them (``Runner.run`` is then the event loop's C
code, idle waiting included).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import rawhttp, scenarios
from benchmarks.load import LoadSpec, run_load, wrk_binary
from benchmarks.scenarios import Services
from benchmarks.targets import HOST, REPO, Supervisor

EDGE_FOR = {
    "preflight": ("cors-edge", "preflight"),
    "get": ("cors-edge", "get"),
    "get-ka": ("cors-edge-ka", "get-keepalive"),
    "get-unix": ("cors-edge-unix", "get-unix"),
    "post-4k": ("cors-edge", "post-4k"),
    "download": ("cors-edge", None),
}


# libc wrappers whose time is the kernel's (the system call itself); glibc's ``syscall``
# is how libuv closes a socket. epoll_pwait with --native is the loop waiting: idle.
_SYSCALLS = frozenset(
    "read write writev readv recv recvfrom send sendto sendmsg recvmsg connect socket "  # noqa: SIM905
    "close syscall accept accept4 shutdown getpid getsockopt setsockopt getpeername "
    "getsockname epoll_ctl fcntl ioctl".split()
)
_IDLE = ("epoll_pwait", "epoll_wait")


def component(frame: str) -> str:
    """Which part of the process a leaf frame (``name (file:line)``) belongs to."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    if name in _IDLE:
        return "idle (epoll_pwait)"
    if name in _SYSCALLS and "libc" in path:
        return "kernel: syscall() (libuv: close)" if name == "syscall" else f"kernel: {name}"
    if name.startswith("gc_") or name == "collect":
        return "cyclic garbage collector"
    if path.startswith("proxy/") or "/proxy/" in path:
        return "cors-edge: " + path.rsplit("proxy/", 1)[-1]
    for part in ("aiohttp", "asyncio", "multidict", "yarl", "prometheus_client", "uvloop"):
        if part in path:
            return f"{part} (Python)" if path.endswith(".py") else f"{part} (C)"
    if path.endswith(".py"):
        return "other Python: " + path.rsplit("/", 1)[-1]
    return "interpreter, libc and C extensions"


def components(raw: Path) -> str:
    """Own samples per component, as shares of the busy ones (idle shown apart)."""
    shares: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")[1:]
        if frames:
            shares[component(frames[-1])] += int(count_text)
    idle = shares.pop("idle (epoll_pwait)", 0)
    busy = sum(shares.values()) or 1
    lines = [f"{busy} busy samples, {idle} idle", "", "busy % component (own samples)"]
    lines += [f"{100 * n / busy:6.1f}  {name}" for name, n in shares.most_common(25)]
    return "\n".join(lines)


def summarise(raw: Path, top: int) -> str:
    """Self and total sample counts per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first frame is the process/thread
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    lines = [f"{samples} samples", "", "self %  function"]
    lines += [f"{100 * n / samples:6.1f}  {name}" for name, n in own.most_common(top)]
    lines += ["", "total % function"]
    lines += [f"{100 * n / samples:6.1f}  {name}" for name, n in total.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("scenario", choices=sorted(EDGE_FOR))
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--native", action="store_true", help="include C frames (uvloop)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--edge-src", type=Path, default=REPO, help="run cors-edge from here")
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy")
    edge_key, scenario_key = EDGE_FOR[args.scenario]
    if args.access_log:
        edge_key = "cors-edge-log"
    workdir = Path(tempfile.mkdtemp(prefix="cors-edge-profile-"))
    raw = args.out / f"cors-edge-{args.scenario}.pyspy.txt"
    try:
        with Supervisor(workdir, args.edge_src.resolve()) as supervisor:
            services = Services(supervisor)
            edge = services.get(edge_key)
            if edge is None:
                sys.exit(f"cannot start {edge_key}: {services.unavailable}")
            recorder = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "-p",
                    str(edge.pid),
                    "-d",
                    str(args.seconds),
                    "-r",
                    str(args.rate),
                    "-f",
                    "raw",
                    "-o",
                    str(raw),
                    *(["--native"] if args.native else ["--nonblocking"]),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(0.5)
                drive(scenario_key, edge.base_url, edge.port or 0, args.seconds, workdir)
            finally:
                recorder.wait(args.seconds + 30)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"# cors-edge profile: {args.scenario}  (collapsed stacks: {raw})\n")
    print(summarise(raw, args.top))
    print("\n" + components(raw))
    return 0


def drive(scenario_key: str | None, base_url: str, port: int, seconds: int, workdir: Path) -> None:
    if scenario_key is None:  # bulk download, repeated until the recording ends
        deadline = time.monotonic() + seconds

        def loop() -> None:
            while time.monotonic() < deadline:
                rawhttp.download(HOST, port, "/api/download?mb=256", {"Origin": scenarios.ORIGIN})

        worker = threading.Thread(target=loop)
        worker.start()
        worker.join()
        return
    scenario = next(s for s in scenarios.load_scenarios() if s.key == scenario_key)
    spec = LoadSpec(
        url=base_url + scenario.path,
        method=scenario.method,
        headers=scenario.headers,
        body=scenario.body,
        connections=scenario.connections or 64,
        duration=seconds,
    )
    run_load(spec, workdir, "wrk" if wrk_binary() else "aiohttp")


if __name__ == "__main__":
    sys.exit(main())
