"""The parent process of `serve --workers N` (proxy/fleet.py): it validates before any
worker starts and says how many workers `auto` chose."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from proxy import cpus
from tests.ops.fleet_harness import wait_ready, worker_pids
from tests.ops.harness import INVALID_LINE_KEY, INVALID_POLICY, ORIGIN_A, Variant
from tests.support import REPO, EdgeFactory


def test_a_bad_policy_file_stops_the_parent_before_any_worker(tmp_path: Path) -> None:
    config = tmp_path / "policies.yaml"
    config.write_text(INVALID_POLICY)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "proxy",
            "serve",
            "--config",
            str(config),
            "--workers",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert f"{config}:{INVALID_LINE_KEY}" in done.stderr
    assert "worker" not in done.stderr


def test_workers_must_be_a_count_or_auto(tmp_path: Path) -> None:
    for bad in ("0", "-1", "many", "100000"):
        done = subprocess.run(
            [sys.executable, "-m", "proxy", "serve", "--workers", bad],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2, bad
        assert "--workers" in done.stderr, done.stderr


async def test_auto_starts_one_worker_per_usable_cpu(edge_factory: EdgeFactory) -> None:
    expected = cpus.detect()
    edge = edge_factory(Variant(ORIGIN_A, 600).text(), "--workers", "auto", "--no-access-log")
    if expected == 1:
        # One usable CPU: a lone serve, no parent and no workers.
        edge.stderr.wait_for(r"listening on", 20)
        assert not any("worker" in line for line in edge.stderr.lines)
        return
    for index in range(expected):
        edge.stderr.wait_for(rf"worker {index} .*serving on the parent's listener", 20)
    assert len(worker_pids(await wait_ready(edge, 1))) == expected
