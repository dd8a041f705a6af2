"""Real processes for end-to-end tests: the legacy Flask app under gunicorn, and cors-edge.

Both bind port 0 and report the port they got in their logs, so tests never collide.
Every process started here is stopped by the fixture that started it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GUNICORN = str(BIN / "gunicorn")

# The policy the suites share (the shapes DESIGN.md describes); a suite that needs
# another one extends it with extend_policy() instead of copying it.
BASE_POLICY_FILE = REPO / "tests" / "policies" / "base.yaml"
BASE_POLICY = BASE_POLICY_FILE.read_text(encoding="utf-8")
DROP = object()  # in extend_policy(): remove this key from the base


def _merge(base: Any, change: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(change, Mapping)):
        return change
    merged = dict(base)
    for key, value in change.items():
        if value is DROP:
            merged.pop(key, None)
        elif key == "routes" and isinstance(merged.get(key), list):
            merged[key] = _merge_routes(merged[key], value)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _route_name(route: Mapping[str, Any]) -> object:
    return route["regex"] if "regex" in route else route.get("path")


def _merge_routes(base: list[dict[str, Any]], changes: list[Mapping[str, Any]]) -> list[Any]:
    routes = {_route_name(route): route for route in base}
    for change in changes:
        name = _route_name(change)
        routes[name] = _merge(routes[name], change) if name in routes else dict(change)
    return list(routes.values())


def extend_policy(
    changes: Mapping[str, Any], *, drop_routes: tuple[str, ...] = (), base: str = BASE_POLICY
) -> str:
    """``base`` (YAML text) with ``changes`` merged in, as YAML text.

    Mappings merge key by key, and ``DROP`` removes a key. ``routes`` merge by their
    ``path`` (or ``regex``): a listed route changes the base's route of that path, a new
    one is appended; ``drop_routes`` names (by path or regex) routes to remove. Anything
    else (lists, scalars) replaces what the base has.
    """
    document = _merge(yaml.safe_load(base), changes)
    document["routes"] = [r for r in document["routes"] if _route_name(r) not in drop_routes]
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=None)


_GUNICORN_LISTENING = re.compile(r"Listening at: (?:http://\S+:(\d+)|unix:(\S+))")
_EDGE_LISTENING = re.compile(r"listening on \S+?:(\d+) \(admin \S+?:(\d+)\)")


class LineCollector:
    """Reads a pipe on a thread so a chatty process never blocks on a full pipe."""

    def __init__(self, stream: object) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: object) -> None:
        for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(
        self, pattern: re.Pattern[str] | str, timeout: float = 15.0, *, after: int = 0
    ) -> re.Match[str]:
        """The first match in a line, from line ``after`` on (0: all lines so far)."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = after
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{regex.pattern!r} not seen in:\n" + "\n".join(self.lines))
                self._cond.wait(remaining)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    def wait_closed(self, timeout: float = 10.0) -> None:
        """Wait for the end of the pipe: after it, ``lines`` is all the process ever wrote."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("the pipe is still open:\n" + self.text())


def _stop(process: subprocess.Popen[str], timeout: float = 10.0) -> int:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)
    return process.returncode


@dataclass
class Upstream:
    process: subprocess.Popen[str]
    url: str
    request_log: Path
    logs: LineCollector

    def requests(self) -> list[dict[str, object]]:
        """Every request the Flask app has served so far, from its own log."""
        if not self.request_log.exists():
            return []
        return [json.loads(line) for line in self.request_log.read_text().splitlines() if line]

    def markers(self) -> list[object]:
        return [entry["marker"] for entry in self.requests() if entry.get("marker")]

    def stop(self) -> int:
        return _stop(self.process)


def start_upstream(
    tmp: Path,
    *,
    workers: int = 4,
    worker_class: str = "gthread",
    threads: int = 8,
    unix_socket: Path | None = None,
    app: str = "examples.legacy_app:app",
    request_log_name: str = "flask-requests.jsonl",
) -> Upstream:
    """A WSGI app (the legacy Flask example unless told) under a real gunicorn."""
    request_log = tmp / request_log_name
    bind = f"unix:{unix_socket}" if unix_socket else "127.0.0.1:0"
    env = {**os.environ, "LEGACY_APP_REQUEST_LOG": str(request_log)}
    process = subprocess.Popen(
        [
            GUNICORN,
            "--bind",
            bind,
            "--workers",
            str(workers),
            "--worker-class",
            worker_class,
            "--threads",
            str(threads),
            "--timeout",
            "120",
            "--graceful-timeout",
            "2",
            "--log-level",
            "info",
            app,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    logs = LineCollector(process.stderr)
    try:
        match = logs.wait_for(_GUNICORN_LISTENING)
        url = f"unix:{match[2]}" if match[2] else f"http://127.0.0.1:{match[1]}"
        logs.wait_for(r"Booting worker")
    except BaseException:
        _stop(process)
        raise
    return Upstream(process, url, request_log, logs)


@dataclass
class Edge:
    process: subprocess.Popen[str]
    port: int
    admin_port: int
    config: Path
    stdout: LineCollector
    stderr: LineCollector
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def access_log(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.stdout.lines if line.startswith("{")]

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 10.0) -> int:
        return _stop(self.process, timeout)

    def wait_exit(self, timeout: float = 30.0) -> int:
        """The exit status, once the process has exited *and* both pipes are read to
        their end: the reader threads lag behind the process (more so on a loaded box),
        so lines written just before the exit (the last access-log lines flushed at
        exit, "stopped") may not be in ``lines`` yet when ``process.wait`` returns."""
        status = self.process.wait(timeout)
        self.stdout.wait_closed()
        self.stderr.wait_closed()
        return status


def start_edge(
    config: Path,
    upstream_url: str,
    *extra_args: str,
    env: dict[str, str] | None = None,
) -> Edge:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--config",
            str(config),
            "--upstream",
            upstream_url,
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            *extra_args,
        ],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    stdout, stderr = LineCollector(process.stdout), LineCollector(process.stderr)
    try:
        match = stderr.wait_for(_EDGE_LISTENING)
    except BaseException:
        _stop(process)
        raise
    return Edge(process, int(match[1]), int(match[2]), config, stdout, stderr)


def write_policy(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@dataclass
class EdgeFactory:
    tmp: Path
    upstream: Upstream
    started: list[Edge] = field(default_factory=list)
    counter: int = 0

    def __call__(
        self,
        policy: str,
        *extra_args: str,
        upstream_url: str | None = None,
        env: dict[str, str] | None = None,
    ) -> Edge:
        self.counter += 1
        config = write_policy(self.tmp / f"policies-{self.counter}.yaml", policy)
        edge = start_edge(config, upstream_url or self.upstream.url, *extra_args, env=env)
        self.started.append(edge)
        return edge

    def close(self) -> None:
        for edge in self.started:
            edge.stop()
