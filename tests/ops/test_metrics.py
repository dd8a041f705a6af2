"""/metrics: Prometheus text from cors-edge's own registry, counting exactly the
requests made, by route, decision and status; reloads; upstream errors."""

from __future__ import annotations

import dataclasses
import hashlib
import signal
import socket
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.metrics import Metrics
from proxy.records import ErrorKind, RequestError, RequestRecord
from tests.conftest import STANDARD_POLICY
from tests.e2e.http import fetch
from tests.ops.harness import admin_get, wait_log
from tests.support import Edge, EdgeFactory, extend_policy

APP = "http://localhost:3000"
EVIL = "http://evil.test"
API = "routes[0] path /api/**"
ECHO = "routes[3] path /echo"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(edge: Edge) -> Samples:
    status, text = await admin_get(edge, "/metrics")
    assert status == 200
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def test_request_counters_match_the_requests(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(STANDARD_POLICY, "--no-access-log")
    url = edge.url
    preflight = {"Access-Control-Request-Method": "POST"}
    plan: list[tuple[int, str, dict[str, str], tuple[str, str, int]]] = [
        # (times, method+path, headers, expected (route, decision, status))
        (3, "OPTIONS /api/items", {"Origin": APP, **preflight}, (API, "preflight_ok", 204)),
        (2, "OPTIONS /api/items", {"Origin": EVIL, **preflight}, (API, "preflight_refused", 403)),
        (4, "GET /api/ping", {"Origin": APP}, (API, "allowed", 200)),
        (1, "GET /api/items/999", {"Origin": APP}, (API, "allowed", 404)),
        (2, "GET /api/ping", {"Origin": EVIL}, (API, "blocked", 403)),
        (
            1,
            "GET /api/ping",
            {"Origin": f"http://127.0.0.1:{edge.port}"},
            (API, "same_origin", 200),
        ),
        (2, "GET /api/ping", {}, (API, "no_origin", 200)),
        (1, "GET /admin/users", {"Origin": EVIL}, ("none", "no_route", 200)),
        (1, "GET /echo", {"Origin": EVIL}, (ECHO, "unenforced", 200)),
        (1, "GET /api/%2e%2e/admin/users", {"Origin": APP}, ("none", "bad_path", 400)),
    ]
    expected: Counter[tuple[str, str, int]] = Counter()
    for times, request, headers, outcome in plan:
        method, path = request.split(" ")
        for _ in range(times):
            answer = await fetch(method, url + path, headers)
            assert answer.status == outcome[2], (request, headers, answer.status)
            expected[outcome] += 1
    samples = await scrape(edge)
    counted = {
        (labels["route"], labels["decision"], int(labels["status"])): count
        for labels, count in (
            (dict(key), count) for key, count in series(samples, "cors_edge_requests_total").items()
        )
    }
    assert counted == dict(expected)
    by_decision: Counter[str] = Counter()
    for (_, decision, _), count in counted.items():
        by_decision[decision] += int(count)
    assert by_decision == {
        "preflight_ok": 3,
        "preflight_refused": 2,
        "allowed": 5,
        "blocked": 2,
        "same_origin": 1,
        "no_origin": 2,
        "no_route": 1,
        "unenforced": 1,
        "bad_path": 1,
    }
    # Forwarded requests have an upstream latency; edge answers do not.
    forwarded = 5 + 1 + 2 + 1 + 1
    latency_counts = series(samples, "cors_edge_upstream_latency_seconds_count")
    assert sum(latency_counts.values()) == forwarded
    assert value(samples, "cors_edge_upstream_latency_seconds_count", route="none") == 1
    assert value(samples, "cors_edge_request_duration_seconds_count") == sum(expected.values())
    assert series(samples, "cors_edge_upstream_errors_total") == {}
    assert value(samples, "cors_edge_in_flight_requests") == 0
    assert value(samples, "cors_edge_ready") == 1
    # The admin listener's own requests are not counted.
    again = await scrape(edge)
    assert series(again, "cors_edge_requests_total") == series(samples, "cors_edge_requests_total")


async def test_reload_metrics(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(STANDARD_POLICY, "--no-access-log")
    config = edge.config
    samples = await scrape(edge)
    sha = hashlib.sha256(config.read_bytes()).hexdigest()
    assert value(samples, "cors_edge_policy_generation") == 1
    assert (
        value(samples, "cors_edge_policy_info", source=str(config), sha256=sha, generation="1") == 1
    )
    for result in ("ok", "unchanged", "error"):
        assert value(samples, "cors_edge_policy_reloads_total", result=result) == 0

    changed = extend_policy({"defaults": {"max_age": 60}})
    config.write_text(changed)
    edge.signal(signal.SIGHUP)
    await wait_log(edge, r"generation 2 sha256")
    edge.signal(signal.SIGHUP)
    await wait_log(edge, r"unchanged, keeping generation 2")
    config.write_text("routes: [")
    edge.signal(signal.SIGHUP)
    await wait_log(edge, r"refused, keeping generation 2")

    samples = await scrape(edge)
    new_sha = hashlib.sha256(changed.encode()).hexdigest()
    assert value(samples, "cors_edge_policy_generation") == 2
    info = series(samples, "cors_edge_policy_info")
    assert info == {
        frozenset({"source": str(config), "sha256": new_sha, "generation": "2"}.items()): 1
    }
    assert value(samples, "cors_edge_policy_reloads_total", result="ok") == 1
    assert value(samples, "cors_edge_policy_reloads_total", result="unchanged") == 1
    assert value(samples, "cors_edge_policy_reloads_total", result="error") == 1


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_upstream_errors_by_kind(edge_factory: EdgeFactory) -> None:
    dead = edge_factory(STANDARD_POLICY, upstream_url=f"http://127.0.0.1:{closed_port()}")
    for _ in range(3):
        answer = await fetch("GET", dead.url + "/api/ping", {"Origin": APP})
        assert answer.status == 502
    samples = await scrape(dead)
    assert series(samples, "cors_edge_upstream_errors_total") == {
        frozenset({("kind", "connect")}): 3
    }
    assert value(samples, "cors_edge_requests_total", route=API, decision="allowed", status="502")
    status, body = await admin_get(dead, "/readyz")
    assert status == 503
    assert "upstream not accepting connections" in body

    slow = edge_factory(extend_policy({"timeouts": {"read": 0.5}}))
    answer = await fetch("GET", slow.url + "/api/slow?seconds=1.5", {"Origin": APP})
    assert answer.status == 504
    samples = await scrape(slow)
    assert series(samples, "cors_edge_upstream_errors_total") == {
        frozenset({("kind", "timeout")}): 1
    }


def test_metrics_observer_in_process() -> None:
    metrics = Metrics()
    base = RequestRecord("GET", "/x", API, APP, "allowed", 200, 10, 2.0, 3.0, generation=1)
    for _ in range(3):
        metrics(base)
    metrics(dataclasses.replace(base, route=None, decision="", status=0, upstream_ms=None))
    too_large = RequestError(ErrorKind.BODY_TOO_LARGE)
    metrics(dataclasses.replace(base, status=413, error=too_large, upstream_ms=None))
    cut_off = RequestError(ErrorKind.DISCONNECTED, aborted=True)
    metrics(dataclasses.replace(base, status=200, error=cut_off))
    registry = metrics.registry
    get = registry.get_sample_value
    assert (
        get("cors_edge_requests_total", {"route": API, "decision": "allowed", "status": "200"}) == 4
    )
    assert (
        get("cors_edge_requests_total", {"route": "none", "decision": "error", "status": "0"}) == 1
    )
    assert get("cors_edge_upstream_latency_seconds_count", {"route": API}) == 4
    assert get("cors_edge_upstream_latency_seconds_sum", {"route": API}) == pytest.approx(0.008)
    # A too-large body is the client's doing, not the upstream's.
    assert get("cors_edge_upstream_errors_total", {"kind": "body_too_large"}) is None
    assert get("cors_edge_upstream_errors_total", {"kind": "aborted:disconnected"}) == 1
    assert get("cors_edge_request_duration_seconds_count") == 6
    # One counter per label combination.
    assert len(metrics._request_children) == 3
