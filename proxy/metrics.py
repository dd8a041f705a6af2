"""Prometheus metrics, collected by a request observer into cors-edge's own registry.

The edge server calls every observer with a :class:`~proxy.server.RequestRecord`
after each request; :class:`Metrics` is one of them. Label children are bound once
per label combination and kept in dicts, so a request costs a few dict look-ups and
lock-protected increments. The label sets are bounded: routes come from the policy
file, decisions from the engine, statuses from HTTP, error kinds from the edge.

Exposed on the admin listener's ``/metrics`` (never on the public port).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from .accesslog import CLIENT_ERRORS  # the client's doing, not the upstream's
from .policy import PolicySet
from .server import RequestRecord

NO_ROUTE_LABEL = "none"
# Decisions the engine makes (cors.Decision), plus "error" for a request that failed
# before a decision was taken. Pre-created so a dashboard shows zeros, not gaps.
DECISIONS = (
    "preflight_ok",
    "preflight_refused",
    "allowed",
    "blocked",
    "same_origin",
    "no_route",
    "no_origin",
    "unenforced",
    "bad_path",
)
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


class Metrics:
    """cors-edge's metrics; call the instance with a RequestRecord (an observer)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cors_edge_requests",
            "Requests handled, by route, CORS decision and response status.",
            ("route", "decision", "status"),
            registry=r,
        )
        self.request_duration = Histogram(
            "cors_edge_request_duration_seconds",
            "Time from request head to the end of cors-edge's response.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "cors_edge_upstream_latency_seconds",
            "Time from sending a request upstream to its response headers, by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "cors_edge_upstream_errors",
            "Requests the upstream failed: connect (refused/unreachable), timeout, "
            "disconnected, payload, aborted:<kind> (broken mid-response).",
            ("kind",),
            registry=r,
        )
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
        self._request_children: dict[tuple[str | None, str, int], Counter] = {}
        self._latency_children: dict[str | None, Histogram] = {}
        self._error_children: dict[str, Counter] = {}

    # --- per request ----------------------------------------------------------

    def __call__(self, record: RequestRecord) -> None:
        route = record.route
        key = (route, record.decision, record.status)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(
                route or NO_ROUTE_LABEL, record.decision or "error", str(record.status)
            )
            self._request_children[key] = child
        child.inc()
        self.request_duration.observe(record.total_ms / 1000.0)
        if record.upstream_ms is not None:
            latency = self._latency_children.get(route)
            if latency is None:
                latency = self.upstream_latency.labels(route or NO_ROUTE_LABEL)
                self._latency_children[route] = latency
            latency.observe(record.upstream_ms / 1000.0)
        error = record.error
        if error is not None and error not in CLIENT_ERRORS:
            counter = self._error_children.get(error)
            if counter is None:
                counter = self.upstream_errors.labels(error)
                self._error_children[error] = counter
            counter.inc()

    # --- lifecycle ------------------------------------------------------------

    def policy_loaded(self, policies: PolicySet, generation: int) -> None:
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
