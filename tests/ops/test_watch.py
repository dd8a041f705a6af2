"""--watch: a Kubernetes-style ConfigMap update (atomic ..data symlink swap) reloads
through the same path as SIGHUP, under load; an invalid update is refused; the
watcher does not spin."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.harness import (
    INVALID_LINE_KEY,
    INVALID_POLICY,
    ORIGIN_A,
    ORIGIN_B,
    ConfigMapVolume,
    FileReads,
    Traffic,
    Variant,
    check_visible,
    wait_log,
)
from tests.support import Edge, Upstream, start_edge

INTERVAL = 0.1


@pytest.fixture
def volume(tmp_path: Path) -> ConfigMapVolume:
    return ConfigMapVolume(tmp_path / "config", Variant(ORIGIN_A, 600).text())


@pytest.fixture
def watched_edge(volume: ConfigMapVolume, upstream: Upstream) -> Iterator[Edge]:
    edge = start_edge(
        volume.path, upstream.url, "--watch", "--watch-interval", str(INTERVAL), "--no-access-log"
    )
    yield edge
    edge.stop()


async def test_configmap_swap_reloads_under_load(
    watched_edge: Edge, volume: ConfigMapVolume
) -> None:
    edge = watched_edge
    traffic = Traffic(edge.url, Variant(ORIGIN_A, 600))
    runner = asyncio.create_task(traffic.run())
    started = time.monotonic()
    plan: list[Variant | None] = [
        Variant(ORIGIN_B, 300, revision=1),
        None,
        Variant(ORIGIN_A, 120, revision=2),
        Variant(ORIGIN_B, 60, revision=3),
    ]
    generation = 1
    try:
        await traffic.wait_for_requests(200)
        for step in plan:
            if step is None:
                volume.update(INVALID_POLICY)
                reads = FileReads(volume.path)  # the new directory holds the bad file
                line = await wait_log(edge, r"reload \(file changed\) refused.*")
                assert f"{volume.path}:{INVALID_LINE_KEY}" in line[0]
                assert f"keeping generation {generation}" in line[0]
                # Not retried every interval: the watcher reads the same bad content
                # five more times (seen as they happen) and refuses it only once.
                await reads.wait(5 + 1)  # the read that was refused, then five more
                reads.close()
                assert len(re.findall("refused", edge.stderr.text())) == 1
                await check_visible(edge.url, traffic.states[-1])
            else:
                traffic.announce(step)
                volume.update(step.text())
                generation += 1
                await wait_log(
                    edge,
                    rf"reload \(file changed\): policy \S+ generation {generation} "
                    rf"sha256 {step.sha256()}",
                )
                traffic.confirm()
                await check_visible(edge.url, step)
            await traffic.wait_for_requests(500)
    finally:
        traffic.finish.set()
        await runner
    elapsed = time.monotonic() - started
    print(
        f"\n{traffic.done} requests in {elapsed:.1f} s, {len(traffic.failures)} failures, "
        f"answers by policy state {traffic.by_state}"
    )
    assert traffic.failures == []
    assert traffic.done >= 2000
    assert set(traffic.by_state) == set(range(len(traffic.states)))
    # Exactly one reload per valid update: the watcher never reloaded the same content.
    assert len(re.findall(r"reload \(file changed\): policy", edge.stderr.text())) == 3


async def test_watcher_survives_a_missing_file_and_does_not_spin(
    watched_edge: Edge, volume: ConfigMapVolume
) -> None:
    edge = watched_edge
    # Paced by the interval, not spinning: ten reads of the file, seen as they happen,
    # take at least nine intervals (a lower bound, which a loaded box cannot break).
    reads = FileReads(volume.path)
    times = await reads.wait(10)
    reads.close()
    assert times[-1] - times[0] >= 9 * INTERVAL * 0.9, times
    # The file disappears (a broken volume): said once, old policy kept.
    target = volume.root / "..data"
    target.rename(volume.root / "..gone")
    await wait_log(edge, r"watch: cannot read .*keeping generation 1")
    await check_visible(edge.url, Variant(ORIGIN_A, 600))
    (volume.root / "..gone").rename(target)
    await wait_log(edge, r"watch: .* is readable again")
    volume.update(Variant(ORIGIN_B, 30, revision=9).text())
    await wait_log(edge, r"reload \(file changed\): policy \S+ generation 2")
    await check_visible(edge.url, Variant(ORIGIN_B, 30))
    assert edge.stderr.text().count("watch: cannot read") == 1
