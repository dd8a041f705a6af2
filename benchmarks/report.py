"""Judge the issue's targets and write ``results.md`` and ``results.png``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.goals import judge
from benchmarks.results import RunResults, Series
from benchmarks.scenarios import TRANSFERS

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["judge", "markdown", "write"]

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


# --- markdown -----------------------------------------------------------------


def _share(series: Series) -> float | None:
    """A proxy's CPU per request as a share of what the app behind it spent on it (not
    for answers the edge gives itself: the app's few µs there are its arbiter's ticks)."""
    own, upstream = series.median("cpu_us"), series.median("upstream_cpu_us")
    if own is None or upstream is None or upstream < 5:
        return None
    return own / upstream


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


README_MARKERS = ("<!-- benchmark-targets:start -->", "<!-- benchmark-targets:end -->")


def targets_table(results: RunResults) -> list[str]:
    rows = []
    for check in results.checks:
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[check.passed]
        ratio = "-" if check.ratio is None else f"{check.ratio:.2f}"
        rows.append([check.name, check.goal, check.measured, ratio, verdict])
    return _table(["target", "goal", "measured", "ratio", "result"], rows)


def readme_block(results: RunResults) -> str:
    """What a full run puts in the README: when, where, how loaded, and the targets."""
    s = results.settings
    lines = [
        f"Latest run: {s.get('date', '?')} on {s.get('cpus', '?')} CPUs, mode "
        f"`{s.get('mode', '?')}`, {s.get('rounds', '?')} alternated rounds of "
        f"{s.get('duration', '?')} s, {s.get('connections', '?')} connections, loader "
        f"{s.get('loaders', '?')}; `{s.get('command', '')}` at revision {s.get('revision', '?')}"
        f" ({'; '.join(n for n in results.notes if n.startswith('1-minute load'))}).",
        "",
        *targets_table(results),
    ]
    return "\n".join(lines)


def replace_readme_block(text: str, block: str) -> str:
    """``text`` with the block between :data:`README_MARKERS` replaced by ``block``."""
    start, end = README_MARKERS
    head, found, rest = text.partition(start)
    _, found_end, tail = rest.partition(end)
    if not found or not found_end:
        raise ValueError(f"README.md has no {start} ... {end} block")
    return f"{head}{start}\n{block}\n{end}{tail}"


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
        out += targets_table(results)
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
                    _fmt(_share(series)),
                    _fmt(series.median("peak_rss_mb"), 1),
                    " ".join(
                        filter(None, [str(sum(x.errors for x in series.samples)), series.note])
                    ),
                ]
            )
        out += [
            "`CPU / upstream's`: the proxy's CPU per request as a share of the CPU the "
            "gunicorn behind it spent on the same requests (Flask's own cost).",
            "",
        ]
        out += _table(
            [
                "scenario",
                "target",
                "req/s",
                "p50 ms",
                "p99 ms",
                "CPU µs/req",
                "upstream CPU µs/req",
                "CPU / upstream's",
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
