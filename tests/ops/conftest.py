"""Fixtures for the operations tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EdgeFactory, Upstream, start_upstream


def start_roomy_upstream(tmp: Path, *, workers: int = 2, threads: int = 32) -> Upstream:
    """The legacy app under gunicorn with enough threads *per worker* for a burst of
    slow requests: gthread workers do not share connections evenly (one worker may
    take 16 of 20), so each worker alone must be able to hold the whole burst."""
    return start_upstream(tmp, workers=workers, threads=threads)


@pytest.fixture(scope="module")
def roomy_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_roomy_upstream(tmp_path_factory.mktemp("roomy-upstream"))
    yield server
    server.stop()


@pytest.fixture
def roomy_edge_factory(tmp_path: Path, roomy_upstream: Upstream) -> Iterator[EdgeFactory]:
    factory = EdgeFactory(tmp_path, roomy_upstream)
    yield factory
    factory.close()
