"""Prometheus metrics, collected by a request observer into cors-edge's own registry.

The edge server calls every observer with a :class:`~proxy.records.RequestRecord`
after each request; :class:`Metrics` is one of them. Per-request counts are kept in
plain dicts on the event loop (no locks: requests and scrapes run on the same loop)
and become metric families only when ``/metrics`` is scraped. The label sets are
bounded: routes come from the policy file, decisions from the engine, statuses from
HTTP, error kinds from :class:`~proxy.records.ErrorKind`.

Exposed on the admin listener's ``/metrics`` (never on the public port).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Info
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .policy import Config
from .records import RequestRecord

NO_ROUTE_LABEL = "none"
RELOAD_RESULTS = ("ok", "unchanged", "error")

# Upstream latency (time to response headers) and total time, in seconds.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)


class _Histogram:
    """Bucket counts kept as plain integers; read only when /metrics is scraped."""

    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # le is inclusive
        self.total += seconds

    def family_buckets(self) -> list[tuple[str, float]]:
        running = 0
        buckets: list[tuple[str, float]] = []
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


class _RequestCollector(Collector):
    """Per-request metrics, counted in plain dicts on the event loop (no locks, no
    label look-ups per request) and turned into metric families at scrape time;
    scrapes run on the same loop, so they see consistent numbers."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.duration = _Histogram()
        self.upstream_latency: dict[str, _Histogram] = {}
        self.upstream_errors: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "cors_edge_requests",
            "Requests handled, by route, CORS decision and response status.",
            labels=("route", "decision", "status"),
        )
        for labels, count in self.requests.items():
            requests.add_metric(labels, count)
        yield requests
        duration = HistogramMetricFamily(
            "cors_edge_request_duration_seconds",
            "Time from request head to the end of cors-edge's response.",
        )
        duration.add_metric((), self.duration.family_buckets(), self.duration.total)
        yield duration
        latency = HistogramMetricFamily(
            "cors_edge_upstream_latency_seconds",
            "Time from sending a request upstream to its response headers, by route.",
            labels=("route",),
        )
        for route, histogram in self.upstream_latency.items():
            latency.add_metric((route,), histogram.family_buckets(), histogram.total)
        yield latency
        errors = CounterMetricFamily(
            "cors_edge_upstream_errors",
            "Requests the upstream failed: connect (refused/unreachable), timeout, "
            "disconnected, payload, aborted:<kind> (broken mid-response).",
            labels=("kind",),
        )
        for kind, count in self.upstream_errors.items():
            errors.add_metric((kind,), count)
        yield errors


class Metrics:
    """cors-edge's metrics; call the instance with a RequestRecord (an observer)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._per_request = _RequestCollector()
        r.register(self._per_request)
        self.reloads = Counter(
            "cors_edge_policy_reloads",
            "Policy reloads (SIGHUP or --watch), by result: ok, unchanged, error.",
            ("result",),
            registry=r,
        )
        self.generation = Gauge(
            "cors_edge_policy_generation",
            "Generation of the policy in use: 1 at start, +1 per successful reload.",
            registry=r,
        )
        self.policy = Info(
            "cors_edge_policy",
            "The policy in use: source file, sha256 of its content, generation.",
            registry=r,
        )
        self.in_flight = Gauge(
            "cors_edge_in_flight_requests", "Requests being handled now.", registry=r
        )
        self.ready = Gauge(
            "cors_edge_ready", "1 while /readyz may answer ready, 0 while draining.", registry=r
        )
        self._reload_children = {result: self.reloads.labels(result) for result in RELOAD_RESULTS}

    # --- per request ----------------------------------------------------------

    def __call__(self, record: RequestRecord) -> None:
        counts = self._per_request
        route = record.route or NO_ROUTE_LABEL
        key = (route, record.decision or "error", str(record.status))
        counts.requests[key] = counts.requests.get(key, 0) + 1
        counts.duration.observe(record.total_ms / 1000.0)
        if record.upstream_ms is not None:
            latency = counts.upstream_latency.get(route)
            if latency is None:
                latency = counts.upstream_latency[route] = _Histogram()
            latency.observe(record.upstream_ms / 1000.0)
        error = record.error
        if error is not None and not error.is_client:  # the upstream's doing, not the client's
            label = error.label
            counts.upstream_errors[label] = counts.upstream_errors.get(label, 0) + 1

    # --- lifecycle ------------------------------------------------------------

    def policy_loaded(self, policies: Config, generation: int) -> None:
        self.generation.set(generation)
        self.policy.info(
            {"source": policies.source, "sha256": policies.sha256, "generation": str(generation)}
        )

    def reload_result(self, result: str) -> None:
        self._reload_children[result].inc()

    def track(self, in_flight: Callable[[], float], ready: Callable[[], float]) -> None:
        """Read the in-flight count and readiness when scraped (no per-request cost)."""
        self.in_flight.set_function(in_flight)
        self.ready.set_function(ready)
