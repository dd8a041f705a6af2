"""Shared fixtures: a real gunicorn-served Flask upstream and real cors-edge processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EdgeFactory, Upstream, start_upstream

# The policy most end-to-end tests run against: the shapes DESIGN.md describes.
STANDARD_POLICY = """
timeouts: {connect: 2, read: 3, client_header: 5}
defaults:
  methods: [GET, HEAD, POST]
  allow_headers: [Content-Type]
  max_age: 600
routes:
  - path: /api/**
    origins:
      - http://localhost:3000
      - https://*.example.com
      - regex: ^https://pr-[0-9]+\\.preview\\.example\\.com$
    methods: [GET, POST, PUT, DELETE]
    allow_headers: [Content-Type, Authorization]
    expose_headers: [X-Total-Count]
    supports_credentials: true
  - path: /public/**
    origins: "*"
  - regex: ^/v[0-9]+/public/
    origins: "*"
    send_wildcard: false
  - path: /echo
    origins: [http://localhost:3000]
    enforce: false
    methods: "*"
    allow_headers: "*"
    allow_private_network: true
"""


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
