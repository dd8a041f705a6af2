"""Issue 10 item 11, with real processes: no policy path can freeze or wedge the proxy.

The path becomes a FIFO nobody writes, a symlink to /dev/zero, or a directory; on
SIGHUP (and under --watch) the read is refused at once, /healthz and proxied requests
keep being answered, a later SIGHUP with a good file applies, and SIGTERM exits 0.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from proxy.policyread import MAX_POLICY_BYTES
from tests.ops.fleet_harness import start_fleet
from tests.ops.harness import ORIGIN_A, ORIGIN_B, Variant, admin_get, check_visible, wait_log
from tests.support import REPO, Edge, EdgeFactory


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def link_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def make_directory(path: Path) -> None:
    path.mkdir()


BAD_PATHS: list[tuple[Callable[[Path], None], str]] = [
    (make_fifo, "a FIFO"),
    (link_dev_zero, "a character device"),
    (make_directory, "a directory"),
]


def replace_with(path: Path, make: Callable[[Path], None]) -> None:
    path.unlink()
    make(path)


def restore(path: Path, text: str) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink()
    path.write_text(text)


async def assert_still_serving(edge: Edge, variant: Variant) -> None:
    status, _ = await admin_get(edge, "/healthz")
    assert status == 200
    await check_visible(edge.url, variant)


def stop_and_expect_zero(edge: Edge) -> None:
    edge.signal(signal.SIGTERM)
    assert edge.wait_exit(30) == 0, edge.stderr.text()[-2000:]


@pytest.mark.parametrize(("make", "kind"), BAD_PATHS, ids=["fifo", "dev-zero", "directory"])
async def test_sighup_on_a_bad_path_wedges_nothing(
    edge_factory: EdgeFactory, make: Callable[[Path], None], kind: str
) -> None:
    first = Variant(ORIGIN_A, 600)
    edge = edge_factory(first.text(), "--no-access-log")
    rss_before = psutil.Process(edge.process.pid).memory_info().rss
    replace_with(edge.config, make)
    edge.signal(signal.SIGHUP)
    refused = await wait_log(edge, r"reload \(SIGHUP\) refused, keeping generation 1.*")
    assert f"{edge.config}:0 (file): cannot read: {kind}" in refused[0]
    await assert_still_serving(edge, first)
    grown = psutil.Process(edge.process.pid).memory_info().rss - rss_before
    assert grown < 64 * 1024 * 1024, f"RSS grew {grown / 2**20:.0f} MiB reading {kind}"
    # The next reload with a good file applies: nothing was left holding the lock.
    second = Variant(ORIGIN_B, 30, revision=1)
    restore(edge.config, second.text())
    edge.signal(signal.SIGHUP)
    await wait_log(edge, rf"reload \(SIGHUP\): policy {re.escape(str(edge.config))} generation 2")
    await assert_still_serving(edge, second)
    stop_and_expect_zero(edge)


async def test_sigterm_right_after_a_sighup_on_a_fifo_exits_zero(edge_factory: EdgeFactory) -> None:
    edge = edge_factory(Variant(ORIGIN_A, 600).text(), "--no-access-log")
    replace_with(edge.config, make_fifo)
    edge.signal(signal.SIGHUP)
    await wait_log(edge, r"reload \(SIGHUP\) refused")
    stop_and_expect_zero(edge)
    assert "stopped" in edge.stderr.text()


@pytest.mark.parametrize(("make", "kind"), BAD_PATHS[:2], ids=["fifo", "dev-zero"])
async def test_watch_on_a_bad_path_keeps_traffic_and_healthz_answering(
    edge_factory: EdgeFactory, make: Callable[[Path], None], kind: str
) -> None:
    first = Variant(ORIGIN_A, 600)
    edge = edge_factory(first.text(), "--no-access-log", "--watch", "--watch-interval", "0.1")
    replace_with(edge.config, make)
    await wait_log(edge, rf"watch: cannot read {re.escape(str(edge.config))} \({kind};")
    await assert_still_serving(edge, first)
    second = Variant(ORIGIN_B, 30, revision=1)
    restore(edge.config, second.text())
    await wait_log(edge, r"watch: .* is readable again")
    await wait_log(edge, r"reload \(file changed\): policy \S+ generation 2")
    await assert_still_serving(edge, second)
    stop_and_expect_zero(edge)


@pytest.mark.parametrize(("make", "kind"), BAD_PATHS, ids=["fifo", "dev-zero", "directory"])
def test_serve_refuses_a_bad_path_at_start(
    tmp_path: Path, make: Callable[[Path], None], kind: str
) -> None:
    path = tmp_path / "policies.yaml"
    make(path)
    argv = [sys.executable, "-m", "proxy", "serve", "--config", str(path)]
    result = subprocess.run(
        [*argv, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert f"{path}:0 (file): cannot read: {kind}; the policy must be a regular file" in (
        result.stderr
    )


async def test_a_policy_over_the_size_limit_is_refused_on_reload(edge_factory: EdgeFactory) -> None:
    first = Variant(ORIGIN_A, 600)
    edge = edge_factory(first.text(), "--no-access-log")
    edge.config.write_text(first.text() + "#" * MAX_POLICY_BYTES)
    edge.signal(signal.SIGHUP)
    refused = await wait_log(edge, r"reload \(SIGHUP\) refused.*")
    assert f"larger than the {MAX_POLICY_BYTES} byte limit" in refused[0]
    await asyncio.wait_for(assert_still_serving(edge, first), 30)
    stop_and_expect_zero(edge)


async def test_workers_parent_on_a_fifo_wedges_nothing(edge_factory: EdgeFactory) -> None:
    # The same read, in `serve --workers N`: the parent reads for SIGHUP and --watch.
    first = Variant(ORIGIN_A, 600)
    edge = start_fleet(edge_factory, first, "--no-access-log", "--watch", "--watch-interval", "0.1")
    replace_with(edge.config, make_fifo)
    edge.signal(signal.SIGHUP)
    refused = await wait_log(edge, r"reload \(SIGHUP\) refused, keeping generation 1.*")
    assert f"{edge.config}:0 (file): cannot read: a FIFO" in refused[0]
    await assert_still_serving(edge, first)
    second = Variant(ORIGIN_B, 30, revision=1)
    restore(edge.config, second.text())
    await wait_log(edge, r"reload \(file changed\): policy \S+ generation 2")
    await assert_still_serving(edge, second)
    stop_and_expect_zero(edge)
