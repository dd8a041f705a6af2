"""Judge the issue's targets and write ``results.md`` and ``results.png``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.results import Check, RunResults, Series
from benchmarks.scenarios import TRANSFERS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

CE = "cors-edge"


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _with_spread(series: Series, name: str, digits: int = 2) -> str:
    median, spread = series.median(name), series.spread(name)
    if median is None or spread is None:
        return "-"
    if len(series.samples) == 1:
        return _fmt(median, digits)
    return f"{_fmt(median, digits)} [{_fmt(spread[0], digits)}-{_fmt(spread[1], digits)}]"


# --- targets ------------------------------------------------------------------


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


def judge(results: RunResults) -> list[Check]:
    """The issue's targets, each as measured in this run (ratios within the same run)."""
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
        _at_most(
            "proxied GET CPU per request (TCP, sync upstream)", m("get", CE, "cpu_us"), 250, "µs"
        ),
        _at_least(
            "proxied GET req/s vs direct (TCP, sync upstream)",
            m("get", CE, "rps"),
            m("get", "Flask direct (gunicorn 1 sync)", "rps"),
            0.65,
        ),
        _at_most(
            "proxied GET CPU per request (UNIX socket upstream)",
            m("get-unix", "cors-edge (unix upstream)", "cpu_us"),
            200,
            "µs",
        ),
        _at_most(
            "proxied GET CPU per request (keep-alive upstream)",
            m("get-keepalive", "cors-edge (gthread keep-alive upstream)", "cpu_us"),
            150,
            "µs",
        ),
    ]
    p50_edge = m("get-1conn", CE, "p50_ms")
    p50_direct = m("get-1conn", "Flask direct (gunicorn 1 sync)", "p50_ms")
    added = None if p50_edge is None or p50_direct is None else p50_edge - p50_direct
    checks.append(_at_most("p50 latency added, one connection", added, 0.5, "ms"))
    for kind, goal in (("download", 0.8), ("upload", 0.9)):
        checks.append(
            _at_least(
                f"streamed {kind} MB/s vs direct",
                m(kind, CE, "mb_per_s"),
                m(kind, "Flask direct (gunicorn 1 sync)", "mb_per_s"),
                goal,
            )
        )
    growth = [
        v
        for v in (m("download", CE, "rss_growth_mb"), m("upload", CE, "rss_growth_mb"))
        if v is not None
    ]
    checks.append(
        _below("proxy RSS growth while streaming", max(growth) if growth else None, 30, "MB")
    )
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


# --- markdown -----------------------------------------------------------------


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def markdown(results: RunResults) -> str:
    s = results.settings
    out = [
        "# cors-edge benchmarks",
        "",
        f"Run {s.get('date', '?')} on {s.get('cpus', '?')} CPUs (`os.cpu_count()`), "
        f"mode `{s.get('mode', '?')}`: {s.get('rounds', '?')} alternated rounds "
        f"(A B A B …) of {s.get('duration', '?')} s per contender, "
        f"{s.get('connections', '?')} connections, loader {s.get('loaders', '?')}.",
        "",
        "Values are medians over the rounds, with [min-max]. CPU is utime+stime from "
        "`/proc/<pid>/stat` over the process and its children, before/after each run, "
        "divided by the requests completed; RSS is `VmHWM`/`VmRSS` of `/proc/<pid>/status`.",
        "",
        "Versions: " + ", ".join(f"{k[2:]} {v}" for k, v in s.items() if k.startswith("v:")),
        "",
        f"Command: `{s.get('command', '')}` at revision {s.get('revision', '?')}.",
        "",
    ]
    if results.checks:
        out += ["## Targets", ""]
        rows = []
        for check in results.checks:
            verdict = {True: "PASS", False: "MISS", None: "n/a"}[check.passed]
            ratio = "-" if check.ratio is None else f"{check.ratio:.2f}"
            rows.append([check.name, check.goal, check.measured, ratio, verdict])
        out += _table(["target", "goal", "measured", "ratio", "result"], rows)
        out += [
            "",
            "Ratios: for `>=` goals measured/reference (higher is better); for `<=`/`<` "
            "goals measured/limit (1.00 or less is a pass).",
            "",
        ]
    load_series = [x for x in results.series if x.scenario not in TRANSFERS]
    if load_series:
        out += ["## Requests", ""]
        rows = []
        for series in load_series:
            rows.append(
                [
                    series.scenario,
                    series.target,
                    _with_spread(series, "rps", 0),
                    _with_spread(series, "p50_ms"),
                    _with_spread(series, "p99_ms"),
                    _fmt(series.median("cpu_us"), 1),
                    _fmt(series.median("upstream_cpu_us"), 1),
                    _fmt(series.median("peak_rss_mb"), 1),
                    " ".join(
                        filter(None, [str(sum(x.errors for x in series.samples)), series.note])
                    ),
                ]
            )
        out += _table(
            [
                "scenario",
                "target",
                "req/s",
                "p50 ms",
                "p99 ms",
                "CPU µs/req",
                "upstream CPU µs/req",
                "peak RSS MB",
                "errors",
            ],
            rows,
        )
        out.append("")
    streams = [x for x in results.series if x.scenario in TRANSFERS]
    if streams:
        out += [f"## Streamed transfers ({s.get('stream_mb', '?')} MiB)", ""]
        rows = [
            [
                x.scenario,
                x.target,
                _with_spread(x, "mb_per_s", 0),
                _fmt(x.median("rss_growth_mb"), 1),
                _fmt(x.median("peak_rss_mb"), 1),
                _fmt(x.median("cpu_s_per_gb"), 2),
                _fmt(x.median("upstream_cpu_s_per_gb"), 2),
            ]
            for x in streams
        ]
        out += _table(
            [
                "transfer",
                "target",
                "MB/s",
                "RSS growth MB",
                "peak RSS MB",
                "CPU s/GB",
                "upstream CPU s/GB",
            ],
            rows,
        )
        out += [
            "",
            "`download` streams the app's default chunked response, `download-sized` the same "
            "with Content-Length (`&sized=1`). RSS growth: `VmHWM` after the transfer (reset "
            "via `clear_refs` before) minus `VmRSS` before, of the process receiving the "
            "client's connection.",
            "",
        ]
    if results.memory:
        mem = results.memory
        out += ["## Memory (fresh cors-edge)", ""]
        out += _table(
            [
                "idle RSS MB",
                f"RSS with {int(mem.get('connections', 0))} idle connections MB",
                "growth MB",
            ],
            [
                [
                    _fmt(mem.get("idle_rss_mb"), 1),
                    _fmt(mem.get("rss_with_connections_mb"), 1),
                    _fmt(mem.get("connections_growth_mb"), 1),
                ]
            ],
        )
        out.append("")
    if results.policy:
        out += ["## Policy decisions (proxy.cors.decide)", ""]
        rows = [
            [
                str(t.routes),
                str(t.origins),
                f"{t.mixed_us:.2f}",
                f"{t.worst_us:.2f}",
                f"{t.load_s:.2f}",
            ]
            for t in results.policy
        ]
        out += _table(
            [
                "routes",
                "origins/route",
                "µs/decision (mix)",
                "µs/decision (refused, last route)",
                "load s",
            ],
            rows,
        )
        out.append("")
    if results.notes:
        out += ["## Notes", ""] + [f"- {note}" for note in results.notes] + [""]
    return "\n".join(out)


# --- chart --------------------------------------------------------------------


def chart(results: RunResults, path: Path) -> None:
    """Horizontal bars (median, min-max whiskers): req/s, p50, p99 per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[str, list[Series]] = {}
    for series in results.series:
        if series.samples:
            groups.setdefault(series.scenario, []).append(series)
    load_groups = {k: v for k, v in groups.items() if k not in TRANSFERS}
    stream_groups = {k: v for k, v in groups.items() if k in TRANSFERS}
    metrics: list[tuple[str, str, Callable[[str], bool]]] = [
        ("rps", "requests/s", lambda _: True),
        ("p50_ms", "p50 latency ms", lambda _: True),
        ("p99_ms", "p99 latency ms", lambda _: True),
    ]
    rows = len(load_groups) + (1 if stream_groups else 0)
    if rows == 0:
        return
    heights = [max(1.2, 0.45 * len(v) + 0.6) for v in load_groups.values()]
    if stream_groups:
        heights.append(max(1.2, 0.45 * sum(len(v) for v in stream_groups.values()) + 0.6))
    fig, axes = plt.subplots(
        rows,
        3,
        figsize=(16, sum(heights) + 1),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    for row, (scenario, members) in enumerate(load_groups.items()):
        labels = [x.target for x in members]
        for col, (name, title, _) in enumerate(metrics):
            _bars(axes[row][col], labels, members, name)
            axes[row][col].set_title(f"{scenario}: {title}", fontsize=9)
            if col:
                axes[row][col].set_yticklabels([])
    if stream_groups:
        row = rows - 1
        members = [x for v in stream_groups.values() for x in v]
        labels = [f"{x.scenario}: {x.target}" for x in members]
        _bars(axes[row][0], labels, members, "mb_per_s")
        axes[row][0].set_title("streamed transfers: MB/s", fontsize=9)
        _bars(axes[row][1], labels, members, "rss_growth_mb")
        axes[row][1].set_title("RSS growth MB", fontsize=9)
        axes[row][1].set_yticklabels([])
        _bars(axes[row][2], labels, members, "cpu_s_per_gb")
        axes[row][2].set_title("front CPU s/GB", fontsize=9)
        axes[row][2].set_yticklabels([])
    s = results.settings
    fig.suptitle(
        f"cors-edge benchmarks — {s.get('date', '')}, {s.get('cpus', '?')} CPUs, "
        f"mode {s.get('mode', '')}; bars: median, whiskers: min-max",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.975))
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _bars(ax: Axes, labels: list[str], members: list[Series], name: str) -> None:
    medians = [x.median(name) or 0.0 for x in members]
    lows = [m - (x.spread(name) or (m, m))[0] for m, x in zip(medians, members, strict=True)]
    highs = [(x.spread(name) or (m, m))[1] - m for m, x in zip(medians, members, strict=True)]
    colours = ["tab:orange" if x.target.startswith(CE) else "tab:blue" for x in members]
    positions = list(range(len(members)))
    ax.barh(positions, medians, xerr=[lows, highs], color=colours, capsize=3)
    ax.set_yticks(positions)
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.tick_params(axis="x", labelsize=7)
    for position, value, high in zip(positions, medians, highs, strict=True):
        ax.text(value + high, position, f" {_fmt(value, 2)}", va="center", fontsize=7)
    ax.margins(x=0.15)


def write(results: RunResults, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    md, png = directory / "results.md", directory / "results.png"
    md.write_text(markdown(results), encoding="utf-8")
    chart(results, png)
    return md, png
