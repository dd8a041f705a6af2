"""Shared fixtures: a real gunicorn-served Flask upstream and real cors-edge processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import BASE_POLICY, EdgeFactory, Upstream, start_upstream

# The policy most end-to-end tests run against: the suites' shared base, unchanged.
STANDARD_POLICY = BASE_POLICY


@pytest.fixture(scope="session")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


@pytest.fixture
def edge_factory(tmp_path: Path, upstream: Upstream) -> Iterator[EdgeFactory]:
    factory = EdgeFactory(tmp_path, upstream)
    yield factory
    factory.close()


@pytest.fixture(scope="module")
def standard_edge(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Iterator[object]:
    factory = EdgeFactory(tmp_path_factory.mktemp("edge"), upstream)
    edge = factory(STANDARD_POLICY)
    yield edge
    factory.close()
