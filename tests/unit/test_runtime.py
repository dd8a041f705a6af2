"""proxy/runtime.py: the event loop and allocator set-up."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Iterator

import pytest

from proxy.runtime import install_event_loop_policy, keep_freed_memory


def test_allocator_tuning_applies_on_glibc() -> None:
    assert platform.libc_ver()[0] == "glibc"  # what the image and CI run on
    assert keep_freed_memory() is True


@pytest.fixture
def restore_loop_policy() -> Iterator[None]:
    policy = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(policy)


@pytest.mark.usefixtures("restore_loop_policy")
def test_uvloop_is_installed_when_importable() -> None:
    import uvloop

    assert install_event_loop_policy() == "uvloop"
    assert isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)


@pytest.fixture
def restore_collector() -> Iterator[None]:
    import gc

    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restore_collector")
def test_the_collector_skips_start_up_objects_and_collects_young_ones_less_often() -> None:
    import gc

    from proxy.runtime import YOUNG_THRESHOLD, tune_collector

    older = gc.get_threshold()[1:]
    frozen = tune_collector()
    assert frozen == gc.get_freeze_count() > 1000  # the modules imported so far, at least
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *older)
    cycle: list[object] = []
    cycle.append(cycle)  # garbage made after the freeze is still collected
    del cycle
    assert gc.collect() >= 1
