"""CPU time and memory of a process tree, read straight from ``/proc``.

CPU time is ``utime + stime`` of ``/proc/<pid>/stat`` summed over the process and all
its live descendants (gunicorn workers, for instance); callers sample it before and
after a run and divide the difference by the number of requests. Memory is ``VmRSS``
and ``VmHWM`` (peak RSS) of ``/proc/<pid>/status``; the peak can be reset between
scenarios by writing ``5`` to ``/proc/<pid>/clear_refs`` (Linux 4.0+, own processes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


@dataclass(frozen=True)
class Memory:
    """Resident memory of a process tree, in bytes."""

    rss: int
    peak: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may contain spaces: split after it.
    return raw[raw.rindex(")") + 2 :].split()


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (every thread's children list, deduplicated)."""
    found: set[int] = set()
    try:
        tasks = list((PROC / str(pid) / "task").iterdir())
    except OSError:
        return []
    for task in tasks:
        try:
            found.update(int(child) for child in (task / "children").read_text().split())
        except OSError:
            continue
    return sorted(found)


def tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    pids: list[int] = []
    pending = [pid]
    while pending:
        current = pending.pop()
        if _stat_fields(current) is None:
            continue
        pids.append(current)
        pending.extend(children(current))
    return pids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` and its live descendants, in seconds."""
    ticks = 0
    for member in tree(pid):
        fields = _stat_fields(member)
        if fields is not None:
            # Fields after the command name: state is index 0, utime 11, stime 12.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / CLOCK_TICKS


def _status_kib(pid: int, key: str) -> int:
    try:
        lines = (PROC / str(pid) / "status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def memory(pid: int) -> Memory:
    """Current and peak RSS of ``pid`` and its descendants (sums over the tree)."""
    members = tree(pid)
    rss = sum(_status_kib(member, "VmRSS") for member in members)
    peak = sum(_status_kib(member, "VmHWM") for member in members)
    return Memory(rss=rss * 1024, peak=peak * 1024)


def reset_peak(pid: int) -> bool:
    """Reset ``VmHWM`` of the tree to the current RSS; False when the kernel refuses."""
    ok = True
    for member in tree(pid):
        try:
            (PROC / str(member) / "clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all CPUs, from ``/proc/stat``)."""
    fields = [int(value) for value in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLOCK_TICKS
