"""`--workers auto`: the affinity mask and the cgroup CPU quota, not the node's core count."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from proxy import cpus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2.0),
        ("150000 100000\n", 1.5),
        ("50000 100000\n", 0.5),
        ("garbage\n", None),
        ("", None),
    ],
)
def test_cgroup_v2_cpu_max(text: str, expected: float | None) -> None:
    assert cpus.quota_cpus(cpu_max=text) == expected


def test_cgroup_v1_quota() -> None:
    assert cpus.quota_cpus(cfs_quota="-1\n", cfs_period="100000\n") is None
    assert cpus.quota_cpus(cfs_quota="300000\n", cfs_period="100000\n") == 3.0


@pytest.mark.parametrize(
    ("affinity", "quota", "expected"),
    [
        (64, 2.0, 2),  # a 2-CPU container on a 64-core node
        (64, 1.5, 2),  # a fractional quota rounds up
        (64, 0.25, 1),  # never below one worker
        (2, 8.0, 2),  # the affinity mask caps a generous quota
        (4, None, 4),  # no quota: the affinity mask alone
    ],
)
def test_usable_cpus(affinity: int, quota: float | None, expected: int) -> None:
    assert cpus.usable_cpus(affinity, quota) == expected


def test_detect_follows_the_affinity_mask_of_a_real_process() -> None:
    """A process pinned to one CPU by the kernel (taskset) detects exactly one."""
    first = min(os.sched_getaffinity(0))
    code = (
        f"import os; os.sched_setaffinity(0, {{{first}}}); "
        "from proxy import cpus; print(cpus.detect())"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "1"


def test_detect_is_never_more_than_the_affinity_mask() -> None:
    assert 1 <= cpus.detect() <= len(os.sched_getaffinity(0))
