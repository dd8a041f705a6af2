"""Prometheus metrics, collected by a request observer into cors-edge's own registry.

The edge server calls every observer with a :class:`~proxy.records.RequestRecord`
after each request; :class:`Metrics` is one of them. Label children are bound once
per label combination and kept in dicts, so a request costs a few dict look-ups and
lock-protected increments (about 2 us). They are prometheus-client's own counters and
histograms, so that under ``--workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set by the
parent) each increment lands in a memory-mapped file the parent sums, and survives
the worker. The label sets are bounded: routes come from the policy file, decisions
from the engine, statuses from HTTP, error kinds from :class:`~proxy.records.ErrorKind`.

Exposed on the admin listener's ``/metrics`` (never on the public port).
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
)

from .policy import Config
from .records import RequestRecord

# No *_created samples: they double the exposition and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

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


class Metrics:
    """cors-edge's metrics; call the instance with a RequestRecord (an observer)."""

    def __init__(
        self, registry: CollectorRegistry | None = None, *, lifecycle: bool = True
    ) -> None:
        """``lifecycle=False`` for a worker of ``--workers N``: it counts requests only
        (into prometheus-client's multiprocess files, which the parent sums); reloads,
        generation and readiness are the parent's to report."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._lifecycle = lifecycle
        self.requests = Counter(
            "cors_edge_requests",
            "Requests handled, by route, CORS decision and response status.",
            ("route", "decision", "status"),
            registry=r,
        )
        self.duration = Histogram(
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
        self.shadow_disagreements = Counter(
            "cors_edge_shadow_disagreements",
            "Requests on enforce: shadow routes where the browser's verdict under cors-edge's "
            "policy (ours) differs from its verdict on the upstream's answer (upstream).",
            ("route", "ours", "upstream"),
            registry=r,
        )
        # Label children bound once per combination: a request costs dict look-ups.
        self._request_children: dict[tuple[str, str, int], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        self._error_children: dict[str, Counter] = {}
        if lifecycle:
            self._lifecycle_metrics(r)

    def _lifecycle_metrics(self, r: CollectorRegistry) -> None:
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
        route = record.route or NO_ROUTE_LABEL
        key = (route, record.decision or "error", record.status)
        counter = self._request_children.get(key)
        if counter is None:
            counter = self._request_children[key] = self.requests.labels(
                route, key[1], str(record.status)
            )
        counter.inc()
        self.duration.observe(record.total_ms / 1000.0)
        if record.upstream_ms is not None:
            latency = self._latency_children.get(route)
            if latency is None:
                latency = self._latency_children[route] = self.upstream_latency.labels(route)
            latency.observe(record.upstream_ms / 1000.0)
        error = record.error
        if error is not None and not error.is_client:  # the upstream's doing, not the client's
            label = error.label
            errors = self._error_children.get(label)
            if errors is None:
                errors = self._error_children[label] = self.upstream_errors.labels(label)
            errors.inc()
        if record.shadow is not None:
            self.shadow_disagreements.labels(route, *record.shadow).inc()

    # --- lifecycle ------------------------------------------------------------

    def policy_loaded(self, policies: Config, generation: int) -> None:
        if not self._lifecycle:
            return
        self.generation.set(generation)
        self.policy.info(
            {"source": policies.source, "sha256": policies.sha256, "generation": str(generation)}
        )

    def reload_result(self, result: str) -> None:
        if not self._lifecycle:
            return
        self._reload_children[result].inc()

    def track(self, in_flight: Callable[[], float], ready: Callable[[], float]) -> None:
        """Read the in-flight count and readiness when scraped (no per-request cost)."""
        if not self._lifecycle:
            return
        self.in_flight.set_function(in_flight)
        self.ready.set_function(ready)
