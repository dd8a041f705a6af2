"""Drive HTTP load: ``wrk`` with a generated Lua script, or the aiohttp fallback.

Both loaders run as a separate process, take a :class:`LoadSpec` and give back a
:class:`LoadResult` (completed requests, wall time, p50/p99 latency, errors), so the
benchmark driver never competes with the servers for the event loop.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.targets import REPO

WRK_MARK = "WRKJSON "


@dataclass(frozen=True)
class LoadSpec:
    """What to send, how hard and for how long."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    connections: int = 64
    duration: float = 3.0


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured."""

    loader: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def wrk_binary() -> str | None:
    # PATH only, like any other tool: a fixed path would disagree with what the caller sees.
    return shutil.which("wrk")


def _lua_string(text: str) -> str:
    """A double-quoted Lua literal; anything but printable ASCII as a decimal escape."""
    safe = (ch if " " <= ch <= "~" and ch not in '"\\' else f"\\{ord(ch):03d}" for ch in text)
    return '"' + "".join(safe) + '"'


def wrk_script(spec: LoadSpec) -> str:
    """The Lua script that sets method, headers and body and prints a JSON summary."""
    lines = [f"wrk.method = {_lua_string(spec.method)}"]
    for name, value in spec.headers.items():
        lines.append(f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}")
    if spec.body:
        lines.append(f"wrk.body = {_lua_string(spec.body.decode('latin-1'))}")
    lines.append(
        """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "p50_us": %.1f, "p99_us": %.1f, '
    .. '"errors": %d, "status_errors": %d}\\n',
    "WRKJSON ", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
"""
    )
    return "\n".join(lines)


def run_wrk(spec: LoadSpec, workdir: Path) -> LoadResult:
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed")
    script = workdir / "wrk-script.lua"
    script.write_bytes(wrk_script(spec).encode("latin-1"))
    seconds = max(1, math.ceil(spec.duration))
    argv = [
        binary,
        "-t1",
        f"-c{spec.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        spec.url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(WRK_MARK):
            data = json.loads(line[len(WRK_MARK) :])
            return LoadResult(
                loader="wrk",
                requests=int(data["requests"]),
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                # wrk counts non-2xx/3xx answers as status errors.
                errors=int(data["errors"]) + int(data["status_errors"]),
            )
    raise RuntimeError(f"wrk gave no summary (exit {done.returncode}): {done.stderr.strip()}")


def run_aiohttp(spec: LoadSpec, workdir: Path) -> LoadResult:
    """The fallback loader: ``python -m benchmarks.aioload`` in its own process."""
    request = workdir / "aioload-spec.json"
    payload = asdict(spec)
    payload["body"] = spec.body.decode("latin-1")
    request.write_text(json.dumps(payload))
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.aioload", str(request)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=spec.duration + 60,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"aioload failed (exit {done.returncode}): {done.stderr.strip()}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(loader="aiohttp", **data)


def run_load(spec: LoadSpec, workdir: Path, loader: str) -> LoadResult:
    """Run ``spec`` with ``loader`` (``wrk`` or ``aiohttp``)."""
    if loader == "wrk":
        return run_wrk(spec, workdir)
    return run_aiohttp(spec, workdir)
