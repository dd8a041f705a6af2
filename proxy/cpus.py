"""How many CPUs this process may really use, for ``serve --workers auto``.

``os.cpu_count()`` is the node's count: a container limited to 2 CPUs on a 64-core node
would start 64 workers that the kernel then throttles. The usable count is the smaller
of the affinity mask (``taskset``, cpusets) and the CFS quota of the process's cgroup
(cgroup v2 ``cpu.max``; v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up,
so 1.5 CPUs of quota gets 2 workers. Never less than 1.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_cpus(
    cpu_max: str | None = None, cfs_quota: str | None = None, cfs_period: str | None = None
) -> float | None:
    """CPUs granted by a cgroup CFS quota, ``None`` when unlimited or unknown.

    ``cpu_max`` is cgroup v2's ``cpu.max`` ("max 100000" or "150000 100000");
    ``cfs_quota``/``cfs_period`` are cgroup v1's files (quota -1 means unlimited).
    """
    if cpu_max is not None:
        fields = cpu_max.split()
        if len(fields) == 2 and fields[0] != "max":
            return _ratio(fields[0], fields[1])
        return None
    if cfs_quota is not None and cfs_period is not None:
        return _ratio(cfs_quota.strip(), cfs_period.strip())
    return None


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return quota_us / period_us


def usable_cpus(affinity: int, quota: float | None) -> int:
    """The worker count for ``auto``: affinity capped by the quota, rounded up, at least 1."""
    count = affinity if quota is None else min(affinity, math.ceil(quota))
    return max(1, count)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _cgroup_dirs() -> tuple[Path | None, Path | None]:
    """This process's cgroup v2 directory and v1 ``cpu`` controller directory, if mounted."""
    v2: Path | None = None
    v1: Path | None = None
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        relative = relative.lstrip("/")
        if hierarchy == "0" and controllers == "":
            v2 = CGROUP_ROOT / relative
        elif "cpu" in controllers.split(","):
            for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
                if (CGROUP_ROOT / mount).is_dir():
                    v1 = CGROUP_ROOT / mount / relative
                    break
    return v2, v1


def detect() -> int:
    """The CPUs this process may use now (affinity mask and cgroup quota)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    v2, v1 = _cgroup_dirs()
    quota = None
    if v2 is not None:
        quota = quota_cpus(cpu_max=_read(v2 / "cpu.max") or _read(CGROUP_ROOT / "cpu.max"))
    if quota is None and v1 is not None:
        quota = quota_cpus(
            cfs_quota=_read(v1 / "cpu.cfs_quota_us"), cfs_period=_read(v1 / "cpu.cfs_period_us")
        )
    return usable_cpus(affinity or os.cpu_count() or 1, quota)
