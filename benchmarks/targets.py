"""Start, probe and stop the processes under test.

Every process is started in its own session (process group) with its output sent
to a log file in the run's work directory, and :class:`Supervisor` kills every group
it started when it is closed, whatever happened. Everything listens on loopback, on
ports found by binding port 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT = 20.0


class StartError(RuntimeError):
    """A process under test did not come up."""


def free_port() -> int:
    """A currently free loopback TCP port (bind port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One started process group and where it listens."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int | None = None
    unix_path: str | None = None
    info: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise ValueError(f"{self.name} does not listen on TCP")
        return f"http://{HOST}:{self.port}"

    @property
    def upstream_url(self) -> str:
        """How cors-edge is told to reach this service."""
        return f"unix:{self.unix_path}" if self.unix_path else self.base_url

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the process group, then SIGKILL whatever is left after ``grace``."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        # Kill the group even when the leader is gone: workers may outlive it.
        _signal_group(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _can_connect(port: int | None, unix_path: str | None) -> bool:
    family = socket.AF_UNIX if unix_path else socket.AF_INET
    address: str | tuple[str, int] = unix_path if unix_path else (HOST, port or 0)
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


class Supervisor:
    """Owns every process the benchmark starts; :meth:`close` stops them all."""

    def __init__(self, workdir: Path, edge_src: Path = REPO) -> None:
        self.workdir = workdir
        # The source tree cors-edge runs from: another checkout A/Bs a proxy change.
        self.edge_src = edge_src
        self.services: dict[str, Service] = {}

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        self.services.clear()

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int | None = None,
        unix_path: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path = REPO,
    ) -> Service:
        """Start ``argv`` in a new process group and wait until it accepts connections."""
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        service = Service(name=name, proc=proc, log=log, port=port, unix_path=unix_path)
        self.services[name] = service
        deadline = time.monotonic() + START_TIMEOUT
        while not _can_connect(port, unix_path):
            if proc.poll() is not None or time.monotonic() > deadline:
                service.stop()
                raise StartError(f"{name} did not start: {' '.join(argv)}\n{service.log_tail()}")
            time.sleep(0.05)
        return service

    # --- the targets -------------------------------------------------------------

    def gunicorn(
        self, name: str, app: str, *, worker_class: str = "sync", unix: bool = False
    ) -> Service:
        """The Flask app under gunicorn with one worker (sync by default)."""
        port = None if unix else free_port()
        unix_path = str(self.workdir / f"{name}.sock") if unix else None
        bind = f"unix:{unix_path}" if unix else f"{HOST}:{port}"
        argv = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            bind,
            "--workers",
            "1",
            "--worker-class",
            worker_class,
            "--backlog",
            "4096",
            "--timeout",
            "300",
            "--graceful-timeout",
            "2",
            "--log-level",
            "warning",
        ]
        if worker_class == "gthread":
            argv += ["--threads", "4", "--keep-alive", "60"]
        service = self.spawn(name, [*argv, app], port=port, unix_path=unix_path)
        service.info["kind"] = f"gunicorn 1x{worker_class}"
        return service

    def bare_aiohttp(self, name: str, mode: str, upstream: Service | None = None) -> Service:
        """A bare aiohttp+uvloop server (``web``, ``lowlevel`` or ``forward`` to upstream)."""
        port = free_port()
        argv = [sys.executable, "-m", "benchmarks.bare_server", "--port", str(port), mode]
        if upstream is not None:
            argv[-1:-1] = ["--upstream", upstream.base_url]
        service = self.spawn(name, argv, port=port)
        service.info["kind"] = f"aiohttp {mode}"
        return service

    def cors_edge(
        self,
        name: str,
        upstream: Service,
        config: Path,
        *,
        access_log: bool = False,
        extra_args: Sequence[str] = (),
    ) -> Service:
        """cors-edge in front of ``upstream`` with the policy file ``config``.

        The access log is off unless asked for, like every other contender's.
        """
        port, admin = free_port(), free_port()
        argv = [
            *cors_edge_command(self.edge_src),
            "serve",
            "--config",
            str(config),
            "--upstream",
            upstream.upstream_url,
            "--listen",
            f"{HOST}:{port}",
            "--admin",
            f"{HOST}:{admin}",
        ]
        if not access_log:
            argv.append("--no-access-log")
        argv.extend(extra_args)
        service = self.spawn(name, argv, port=port, cwd=self.edge_src)
        service.info["kind"] = "cors-edge"
        service.info["admin"] = str(admin)
        return service

    def nginx(self, name: str, upstream: Service) -> Service | None:
        """nginx (one process) with a CORS config equivalent to the policy; None if absent."""
        binary = nginx_binary()
        if binary is None:
            return None
        from benchmarks.nginx_conf import render

        prefix = self.workdir / name
        prefix.mkdir(exist_ok=True)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(render(prefix=prefix, port=port, upstream_port=upstream.port or 0))
        argv = [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")]
        service = self.spawn(name, argv, port=port)
        service.info["kind"] = "nginx"
        return service


def nginx_binary() -> str | None:
    # PATH only (root's PATH has /usr/sbin): the contender is there exactly when `nginx` runs.
    return shutil.which("nginx")


def cors_edge_command(src: Path = REPO) -> list[str]:
    """How to start cors-edge: the package's ``__main__`` or the console script."""
    if (src / "proxy" / "__main__.py").exists():
        return [sys.executable, "-m", "proxy"]
    script = Path(sys.executable).with_name("cors-edge")
    if script.exists():
        return [str(script)]
    raise StartError("cors-edge is not available yet (no proxy/__main__.py, no cors-edge script)")


def cors_edge_available(src: Path = REPO) -> bool:
    try:
        argv = [*cors_edge_command(src), "--help"]
    except StartError:
        return False
    try:
        done = subprocess.run(argv, cwd=src, capture_output=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
