"""The performance issue's targets, judged on one run (every ratio within that run).

Issue 11 ("a guard that costs less than the house it guards") set the proxied-request
targets: proxy CPU per request as a share of Flask's own (the gunicorn behind it, measured
in the same run), throughput against Flask direct, CPU per request over a UNIX socket and
to a keep-alive upstream, streaming against direct. nginx, where it ran, is the reference
quoted beside the two sync-TCP targets.
"""

from __future__ import annotations

from benchmarks.results import Check, RunResults

CE = "cors-edge"
DIRECT = "Flask direct (gunicorn 1 sync)"
NGINX = "nginx"


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _at_least(
    name: str, measured: float | None, reference: float | None, goal: float, unit: str = "x"
) -> Check:
    if measured is None or reference is None or reference == 0:
        return Check(name, f">= {goal}{unit}", "-", None, None)
    ratio = measured / reference
    return Check(
        name, f">= {goal}{unit}", f"{_fmt(measured)} vs {_fmt(reference)}", ratio, ratio >= goal
    )


def _at_most(name: str, measured: float | None, goal: float, unit: str) -> Check:
    if measured is None:
        return Check(name, f"<= {goal} {unit}", "-", None, None)
    return Check(
        name,
        f"<= {goal} {unit}",
        f"{_fmt(measured, 2 if abs(measured) < 10 else 1)} {unit}",
        measured / goal,
        measured <= goal,
    )


def _below(name: str, measured: float | None, goal: float, unit: str) -> Check:
    if measured is None:
        return Check(name, f"< {goal} {unit}", "-", None, None)
    return Check(
        name,
        f"< {goal} {unit}",
        f"{_fmt(measured, 2 if abs(measured) < 10 else 1)} {unit}",
        measured / goal,
        measured < goal,
    )


def cpu_share(results: RunResults, scenario: str, target: str) -> float | None:
    """A front's CPU per request divided by the CPU its upstream spent on the same request."""
    own = results.median(scenario, target, "cpu_us")
    upstream = results.median(scenario, target, "upstream_cpu_us")
    if own is None or not upstream:
        return None
    return own / upstream


def _with_nginx(check: Check, nginx: float | None) -> Check:
    if nginx is not None and check.passed is not None:
        check.measured += f" (nginx {_fmt(nginx)})"
    return check


def _proxied_get(results: RunResults) -> list[Check]:
    m = results.median
    share = cpu_share(results, "get", CE)
    share_check = Check(
        "proxied GET proxy CPU / Flask's own CPU per request (sync TCP)",
        "<= 0.65",
        "-" if share is None else _fmt(share),
        None if share is None else share / 0.65,
        None if share is None else share <= 0.65,
    )
    direct = m("get", DIRECT, "rps")
    nginx_rps = m("get", NGINX, "rps")
    return [
        _with_nginx(share_check, cpu_share(results, "get", NGINX)),
        _with_nginx(
            _at_least("proxied GET req/s vs direct (sync TCP)", m("get", CE, "rps"), direct, 0.75),
            nginx_rps / direct if nginx_rps and direct else None,
        ),
        _at_most(
            "proxied GET proxy CPU per request (keep-alive gthread upstream)",
            m("get-keepalive", "cors-edge (gthread keep-alive upstream)", "cpu_us"),
            100,
            "µs",
        ),
        _at_most(
            "proxied GET proxy CPU per request (UNIX socket upstream)",
            m("get-unix", "cors-edge (unix upstream)", "cpu_us"),
            130,
            "µs",
        ),
    ]


def _streams(results: RunResults) -> list[Check]:
    m = results.median
    checks = [
        _at_least(
            f"streamed {kind} MB/s vs direct",
            m(kind, CE, "mb_per_s"),
            m(kind, DIRECT, "mb_per_s"),
            goal,
        )
        for kind, goal in (("download", 0.8), ("upload", 0.9))
    ]
    growth = [
        v
        for v in (m("download", CE, "rss_growth_mb"), m("upload", CE, "rss_growth_mb"))
        if v is not None
    ]
    checks.append(
        _below("proxy RSS growth while streaming", max(growth) if growth else None, 30, "MB")
    )
    return checks


def judge(results: RunResults) -> list[Check]:
    """Every target, as measured in this run."""
    m = results.median
    checks = [
        _at_least(
            "preflight req/s vs bare aiohttp web.Application",
            m("preflight", CE, "rps"),
            m("preflight", "bare aiohttp web.Application", "rps"),
            1.2,
        ),
        _at_least(
            "preflight req/s vs Flask-CORS (1 sync worker)",
            m("preflight", CE, "rps"),
            m("preflight", "Flask-CORS (gunicorn 1 sync)", "rps"),
            10,
        ),
        _at_most("preflight CPU per request", m("preflight", CE, "cpu_us"), 25, "µs"),
        *_proxied_get(results),
    ]
    p50_edge = m("get-1conn", CE, "p50_ms")
    p50_direct = m("get-1conn", DIRECT, "p50_ms")
    added = None if p50_edge is None or p50_direct is None else p50_edge - p50_direct
    checks.append(_at_most("p50 latency added, one connection", added, 0.5, "ms"))
    checks += _streams(results)
    largest = max(results.policy, key=lambda timing: timing.routes, default=None)
    policy_name = "policy decision"
    if largest is not None:
        policy_name += f" at {largest.routes} routes x {largest.origins} origins"
    checks.append(_at_most(policy_name, largest.mixed_us if largest else None, 20, "µs"))
    checks.append(_below("idle RSS", results.memory.get("idle_rss_mb"), 60, "MB"))
    connections = int(results.memory.get("connections", 1000))
    checks.append(
        _below(
            f"{connections} idle keep-alive connections add",
            results.memory.get("connections_growth_mb"),
            40,
            "MB",
        )
    )
    return checks
