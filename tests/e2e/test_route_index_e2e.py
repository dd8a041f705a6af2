"""Issue 10 item 15, end to end: a regex route is checked for every path it matches,
not only for paths whose first segment looks like its own."""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.http import fetch
from tests.support import EdgeFactory, Upstream

# The faithful form of the Flask-CORS key r"/api/*": it matches /apidocs and /api-v2/x.
POLICY = """
routes:
  - path: /public/**
    origins: "*"
  - regex: ^/api/*
    origins: [http://localhost:3000]
"""


@pytest.mark.parametrize("path", ["/apidocs", "/api-v2/x", "/api/items"])
async def test_cross_origin_post_to_a_path_a_regex_matches_is_blocked_before_flask(
    edge_factory: EdgeFactory, upstream: Upstream, path: str
) -> None:
    edge = edge_factory(POLICY)
    marker = uuid.uuid4().hex
    answer = await fetch(
        "POST",
        f"{edge.url}{path}?m={marker}",
        {"Origin": "https://evil.test", "Content-Type": "text/plain"},
        data=b"x",
    )
    assert answer.status == 403, answer.body
    assert not any(marker in str(entry.get("raw_uri")) for entry in upstream.requests())
    allowed = await fetch("GET", f"{edge.url}{path}", {"Origin": "http://localhost:3000"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
