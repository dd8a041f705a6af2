"""The scenarios: what is sent, to which contenders, and how each run is measured.

Contenders name services by key; :class:`Services` starts each one the first time a
scenario needs it and keeps it for the rest of the run. Rounds alternate the
contenders (A B A B ...), so drift in the machine hits all of them alike.
"""

from __future__ import annotations

import functools
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import procstat, rawhttp
from benchmarks.load import LoadSpec, run_load
from benchmarks.results import Sample, Series
from benchmarks.targets import HOST, REPO, Service, Supervisor

ORIGIN = "http://localhost:3000"
POLICY_FILE = REPO / "config" / "policies.yaml"
MB = 1 << 20
# A failed measurement is reported in the results, never allowed to stop the run.
MEASURE_ERRORS = (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired)

PREFLIGHT_HEADERS = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type",
}


def json_body(size: int = 4096) -> bytes:
    """A JSON document of exactly ``size`` bytes."""
    skeleton = json.dumps({"items": [], "pad": ""}).encode()
    items = [{"id": n, "name": f"item-{n}", "price": n * 1.5} for n in range(size // 64)]
    body = json.dumps({"items": items, "pad": ""}).encode()
    while len(body) > size - len(skeleton) and items:
        items.pop()
        body = json.dumps({"items": items, "pad": ""}).encode()
    return json.dumps({"items": items, "pad": "x" * (size - len(body))}).encode()


@dataclass(frozen=True)
class Contender:
    """One thing under test in a scenario."""

    label: str
    front: str  # service key that receives the load
    upstream: str | None = None  # service key behind it, whose CPU is reported too
    cors: bool = True  # the answer must carry Access-Control-Allow-Origin


@dataclass(frozen=True)
class LoadScenario:
    key: str
    title: str
    method: str
    path: str
    headers: dict[str, str]
    contenders: tuple[Contender, ...]
    body: bytes = b""
    connections: int | None = None  # None: the run's default


CE = Contender("cors-edge", "cors-edge", "flask")
CE_LOG = Contender("cors-edge (access log on)", "cors-edge-log", "flask")
CE_UNIX = Contender("cors-edge (unix upstream)", "cors-edge-unix", "flask-unix")
CE_KA = Contender("cors-edge (gthread keep-alive upstream)", "cors-edge-ka", "flask-gthread")
BARE_WEB = Contender("bare aiohttp web.Application", "aiohttp-web")
BARE_LOW = Contender("bare aiohttp web.Server", "aiohttp-lowlevel")
FLASK_CORS = Contender("Flask-CORS (gunicorn 1 sync)", "flask-cors")
NGINX = Contender("nginx", "nginx", "flask")
FORWARD = Contender("bare aiohttp forwarder (ClientSession)", "aiohttp-forward", "flask")
FORWARD_KA = Contender(
    "bare aiohttp forwarder (ClientSession, gthread upstream)",
    "aiohttp-forward-ka",
    "flask-gthread",
)
DIRECT = Contender("Flask direct (gunicorn 1 sync)", "flask", cors=False)
DIRECT_KA = Contender("Flask direct (gunicorn 1 gthread)", "flask-gthread", cors=False)

ECHO_HEADERS = {"Origin": ORIGIN, "Content-Type": "application/json"}


def load_scenarios() -> list[LoadScenario]:
    return [
        LoadScenario(
            "preflight",
            "edge preflight (OPTIONS /api/echo)",
            "OPTIONS",
            "/api/echo",
            PREFLIGHT_HEADERS,
            (CE, BARE_WEB, BARE_LOW, FLASK_CORS, NGINX, CE_LOG),
        ),
        LoadScenario(
            "get",
            "proxied GET /api/ping with Origin",
            "GET",
            "/api/ping",
            {"Origin": ORIGIN},
            (CE, DIRECT, FLASK_CORS, NGINX, CE_LOG, FORWARD),
        ),
        LoadScenario(
            "get-1conn",
            "proxied GET /api/ping, one connection",
            "GET",
            "/api/ping",
            {"Origin": ORIGIN},
            (CE, DIRECT),
            connections=1,
        ),
        LoadScenario(
            "get-unix",
            "proxied GET /api/ping, upstream on a UNIX socket",
            "GET",
            "/api/ping",
            {"Origin": ORIGIN},
            (CE_UNIX, DIRECT),
        ),
        LoadScenario(
            "get-keepalive",
            "proxied GET /api/ping, keep-alive upstream (gthread)",
            "GET",
            "/api/ping",
            {"Origin": ORIGIN},
            (CE_KA, DIRECT_KA, FORWARD_KA),
        ),
        LoadScenario(
            "post-4k",
            "proxied POST /api/echo, 4 KB JSON",
            "POST",
            "/api/echo",
            ECHO_HEADERS,
            (CE, DIRECT, FLASK_CORS, NGINX),
            body=json_body(),
        ),
    ]


SMOKE_SCENARIO = LoadScenario(
    "preflight",
    "edge preflight (OPTIONS /api/echo)",
    "OPTIONS",
    "/api/echo",
    PREFLIGHT_HEADERS,
    (BARE_WEB,),
)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Services:
    """Starts services by key on first use; unavailable ones are remembered as such."""

    supervisor: Supervisor
    started: dict[str, Service] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Service | None:
        if key in self.started:
            return self.started[key]
        if key in self.unavailable:
            return None
        try:
            service = self._start(key)
        except Exception as error:
            self.unavailable[key] = str(error).splitlines()[0]
            log(f"  ! {key} unavailable: {error}")
            return None
        if service is None:
            self.unavailable[key] = "not installed"
            return None
        self.started[key] = service
        return service

    def _start(self, key: str) -> Service | None:
        sup = self.supervisor
        makers: dict[str, Callable[[], Service | None]] = {
            "flask": lambda: sup.gunicorn(key, "examples.legacy_app:app"),
            "flask-unix": lambda: sup.gunicorn(key, "examples.legacy_app:app", unix=True),
            "flask-gthread": lambda: sup.gunicorn(
                key, "examples.legacy_app:app", worker_class="gthread"
            ),
            "flask-cors": lambda: sup.gunicorn(key, "benchmarks.flask_cors_app:app"),
            "aiohttp-web": lambda: sup.bare_aiohttp(key, "web"),
            "aiohttp-lowlevel": lambda: sup.bare_aiohttp(key, "lowlevel"),
            "aiohttp-forward": lambda: self._behind(key, "flask", self._forwarder),
            "aiohttp-forward-ka": lambda: self._behind(key, "flask-gthread", self._forwarder),
            "nginx": lambda: self._behind(key, "flask", sup.nginx),
            "cors-edge": lambda: self._edge(key, "flask"),
            "cors-edge-unix": lambda: self._edge(key, "flask-unix"),
            "cors-edge-ka": lambda: self._edge(key, "flask-gthread"),
            "cors-edge-idle": lambda: self._edge(key, "flask"),
            "cors-edge-log": lambda: self._edge(key, "flask", access_log=True),
        }
        return makers[key]()

    def _behind(
        self, key: str, upstream_key: str, make: Callable[[str, Service], Service | None]
    ) -> Service | None:
        upstream = self.get(upstream_key)
        if upstream is None:
            raise RuntimeError(f"its upstream {upstream_key} is unavailable")
        return make(key, upstream)

    def _forwarder(self, name: str, upstream: Service) -> Service:
        return self.supervisor.bare_aiohttp(name, "forward", upstream)

    def _edge(self, key: str, upstream_key: str, *, access_log: bool = False) -> Service | None:
        def make(name: str, upstream: Service) -> Service:
            return self.supervisor.cors_edge(name, upstream, POLICY_FILE, access_log=access_log)

        return self._behind(key, upstream_key, make)


def probe(service: Service, scenario: LoadScenario, contender: Contender) -> str | None:
    """One request by hand: None if the answer is what the scenario expects, else why not."""
    connection = http.client.HTTPConnection(HOST, service.port, timeout=10)
    try:
        connection.request(
            scenario.method, scenario.path, body=scenario.body or None, headers=scenario.headers
        )
        response = connection.getresponse()
        response.read()
    except OSError as error:
        return f"probe failed: {error}"
    finally:
        connection.close()
    if response.status >= 300:
        return f"probe answered {response.status}"
    if contender.cors and response.getheader("Access-Control-Allow-Origin") != ORIGIN:
        return "probe answer lacks Access-Control-Allow-Origin"
    return None


def measure_load(
    front: Service, upstream: Service | None, spec: LoadSpec, workdir: Path, loader: str
) -> Sample:
    procstat.reset_peak(front.pid)  # peak RSS of this run, not of the process's life
    cpu_front = procstat.cpu_seconds(front.pid)
    cpu_upstream = procstat.cpu_seconds(upstream.pid) if upstream else 0.0
    result = run_load(spec, workdir, loader)
    cpu_front = procstat.cpu_seconds(front.pid) - cpu_front
    cpu_upstream = procstat.cpu_seconds(upstream.pid) - cpu_upstream if upstream else 0.0
    per_request = 1e6 / result.requests if result.requests else 0.0
    return Sample(
        loader=result.loader,
        requests=result.requests,
        seconds=result.seconds,
        rps=result.rps,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        errors=result.errors,
        cpu_us=cpu_front * per_request,
        upstream_cpu_us=cpu_upstream * per_request if upstream else None,
        peak_rss_mb=procstat.memory(front.pid).peak / MB,
    )


@dataclass(frozen=True)
class Settings:
    rounds: int
    duration: float
    connections: int
    warmup: float
    loaders: tuple[str, ...]
    stream_mb: int
    idle_connections: int
    policy_sizes: tuple[int, ...]
    policy_budget_s: float


def run_load_scenario(
    scenario: LoadScenario, services: Services, settings: Settings, workdir: Path
) -> list[Series]:
    log(f"== {scenario.title}")
    ready: list[tuple[str, Service, Service | None, Series]] = []
    skipped: list[Series] = []
    for contender in scenario.contenders:
        front = services.get(contender.front)
        upstream = services.get(contender.upstream) if contender.upstream else None
        for loader in settings.loaders:
            label = contender.label
            if len(settings.loaders) > 1:
                label = f"{label} [{loader}]"
            series = Series(scenario.key, label)
            if front is None:
                series.note = "unavailable: " + services.unavailable.get(contender.front, "?")
            else:
                series.note = probe(front, scenario, contender) or ""
            if front is None or series.note:
                log(f"  ! {label}: {series.note}")
                skipped.append(series)
            else:
                ready.append((loader, front, upstream, series))

    def spec_for(front: Service, duration: float) -> LoadSpec:
        return LoadSpec(
            url=front.base_url + scenario.path,
            method=scenario.method,
            headers=scenario.headers,
            body=scenario.body,
            connections=scenario.connections or settings.connections,
            duration=duration,
        )

    if settings.warmup > 0:
        for loader, front, _, _ in ready:
            run_load(spec_for(front, settings.warmup), workdir, loader)
    for round_number in range(1, settings.rounds + 1):
        for loader, front, upstream, series in ready:
            try:
                sample = measure_load(
                    front, upstream, spec_for(front, settings.duration), workdir, loader
                )
            except MEASURE_ERRORS as error:
                series.note = f"round {round_number} failed: {error}"
                log(f"  ! {series.target}: {series.note}")
                continue
            series.samples.append(sample)
            log(
                f"  round {round_number}/{settings.rounds} {series.target}: "
                f"{sample.rps:,.0f} req/s p50 {sample.p50_ms:.2f} ms p99 {sample.p99_ms:.2f} ms "
                f"cpu {sample.cpu_us or 0:.0f} us/req errors {sample.errors}"
            )
    return [series for _, _, _, series in ready] + skipped


# --- bulk transfers -----------------------------------------------------------


TRANSFERS = ("download", "download-sized", "upload")


def _transfer(kind: str, port: int, size_mb: int) -> Callable[[], rawhttp.Transfer]:
    """One bulk transfer: chunked download (the app's default), sized download, upload."""
    headers = {"Origin": ORIGIN}
    if kind == "upload":
        return functools.partial(rawhttp.upload, HOST, port, "/api/upload", size_mb * MB, headers)
    path = f"/api/download?mb={size_mb}" + ("&sized=1" if kind == "download-sized" else "")
    return functools.partial(rawhttp.download, HOST, port, path, headers)


def run_streams(services: Services, settings: Settings) -> list[Series]:
    """1 GB (``stream_mb``) downloads and upload, direct and through cors-edge, alternated."""
    size = settings.stream_mb * MB
    log(f"== streamed downloads and upload, {settings.stream_mb} MiB")
    found = {(kind, c.label): Series(kind, c.label) for kind in TRANSFERS for c in (CE, DIRECT)}
    available = [
        (c, services.get(c.front), services.get(c.upstream) if c.upstream else None)
        for c in (CE, DIRECT)
    ]
    for round_number in range(1, settings.rounds + 1):
        for kind in TRANSFERS:
            for contender, front, upstream in available:
                if front is None:
                    continue
                series = found[kind, contender.label]
                transfer = _transfer(kind, front.port or 0, settings.stream_mb)
                try:
                    sample = measure_transfer(front, upstream, transfer, size)
                except MEASURE_ERRORS as error:
                    series.note = f"round {round_number} failed: {error}"
                    log(f"  ! {kind} {contender.label}: {error}")
                    continue
                series.samples.append(sample)
                log(
                    f"  round {round_number}/{settings.rounds} {kind} {contender.label}: "
                    f"{sample.mb_per_s or 0:,.0f} MB/s, RSS +{sample.rss_growth_mb or 0:.1f} MB"
                )
    return list(found.values())


def measure_transfer(
    front: Service,
    upstream: Service | None,
    transfer: Callable[[], rawhttp.Transfer],
    size: int,
) -> Sample:
    procstat.reset_peak(front.pid)
    before = procstat.memory(front.pid)
    cpu = procstat.cpu_seconds(front.pid)
    cpu_upstream = procstat.cpu_seconds(upstream.pid) if upstream else 0.0
    done = transfer()
    cpu = procstat.cpu_seconds(front.pid) - cpu
    cpu_upstream = procstat.cpu_seconds(upstream.pid) - cpu_upstream if upstream else 0.0
    after = procstat.memory(front.pid)
    if done.status >= 300 or done.nbytes != size:
        raise RuntimeError(f"bulk transfer answered {done.status} with {done.nbytes} bytes")
    gigabytes = done.nbytes / 1e9
    return Sample(
        requests=1,
        seconds=done.seconds,
        mb_per_s=done.mb_per_s,
        cpu_s_per_gb=cpu / gigabytes,
        upstream_cpu_s_per_gb=cpu_upstream / gigabytes if upstream else None,
        peak_rss_mb=after.peak / MB,
        rss_growth_mb=max(0, after.peak - before.rss) / MB,
    )


# --- idle memory --------------------------------------------------------------


def run_idle(services: Services, settings: Settings) -> dict[str, float]:
    """Idle RSS of a fresh cors-edge, and the growth ``idle_connections`` cause."""
    log(f"== idle memory, {settings.idle_connections} keep-alive connections")
    edge = services.get("cors-edge-idle")
    if edge is None:
        return {}
    time.sleep(0.5)
    idle = procstat.memory(edge.pid).rss
    sockets = rawhttp.open_idle(HOST, edge.port or 0, 1, "OPTIONS", "/api/echo", PREFLIGHT_HEADERS)
    rawhttp.close_all(sockets)
    time.sleep(0.3)
    before = procstat.memory(edge.pid).rss
    sockets = rawhttp.open_idle(
        HOST, edge.port or 0, settings.idle_connections, "OPTIONS", "/api/echo", PREFLIGHT_HEADERS
    )
    try:
        time.sleep(0.5)
        after = procstat.memory(edge.pid).rss
    finally:
        rawhttp.close_all(sockets)
    found = {
        "idle_rss_mb": idle / MB,
        "rss_before_connections_mb": before / MB,
        "rss_with_connections_mb": after / MB,
        "connections_growth_mb": (after - before) / MB,
        "connections": float(settings.idle_connections),
    }
    log(
        f"  idle RSS {idle / MB:.1f} MB; {settings.idle_connections} connections "
        f"+{(after - before) / MB:.1f} MB"
    )
    return found
