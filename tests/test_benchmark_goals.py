"""benchmarks/goals.py judges the performance targets from a run's medians (no timing
here: synthetic samples, so the arithmetic and the nginx reference are what is tested)."""

from __future__ import annotations

from benchmarks.goals import cpu_share, judge
from benchmarks.results import RunResults, Sample, Series


def series(scenario: str, target: str, **values: float) -> Series:
    return Series(scenario, target, [Sample(**values)])  # type: ignore[arg-type]


def test_cpu_share_and_nginx_reference() -> None:
    results = RunResults(
        settings={},
        series=[
            series("get", "cors-edge", rps=800, cpu_us=120, upstream_cpu_us=240),
            series("get", "nginx", rps=980, cpu_us=60, upstream_cpu_us=240),
            series("get", "Flask direct (gunicorn 1 sync)", rps=1000, cpu_us=250),
            series("get-keepalive", "cors-edge (gthread keep-alive upstream)", cpu_us=90),
            series("get-unix", "cors-edge (unix upstream)", cpu_us=150),
        ],
    )
    assert cpu_share(results, "get", "cors-edge") == 0.5
    checks = {check.name: check for check in judge(results)}
    share = checks["proxied GET proxy CPU / Flask's own CPU per request (sync TCP)"]
    assert (share.measured, share.passed) == ("0.50 (nginx 0.25)", True)
    throughput = checks["proxied GET req/s vs direct (sync TCP)"]
    assert throughput.passed is True and throughput.measured.endswith("(nginx 0.98)")
    assert checks["proxied GET proxy CPU per request (keep-alive gthread upstream)"].passed
    unix = checks["proxied GET proxy CPU per request (UNIX socket upstream)"]
    assert unix.passed is False and unix.ratio is not None and unix.ratio > 1
    assert checks["streamed download MB/s vs direct"].passed is None  # not measured
