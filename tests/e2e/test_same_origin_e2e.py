"""Issue 10 item 10, end to end: same-origin detection behind a TLS terminator.

cors-edge sees plain HTTP. With `public_scheme: https` the app's own https pages are
same-origin and an http page on the API's own host is cross-origin; whenever an
untrusted X-Forwarded-Proto contradicts what cors-edge assumes, the request is
judged as cross-origin (here: refused, since the route does not list the origin).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from proxy.loader import load_policy_text
from tests.e2e.http import fetch
from tests.support import REPO, EdgeFactory, Upstream

ROUTES = """
routes:
  - path: /api/**
    origins: [https://app.example.com]
    methods: [GET, POST, PUT]
"""


async def post(edge_url: str, upstream: Upstream, headers: dict[str, str]) -> tuple[int, bool]:
    marker = uuid.uuid4().hex
    answer = await fetch(
        "POST",
        f"{edge_url}/api/echo?m={marker}",
        {"Host": "api.test", "Content-Type": "text/plain", **headers},
        b"x",
    )
    reached = any(marker in str(entry.get("raw_uri")) for entry in upstream.requests())
    return answer.status, reached


@pytest.mark.parametrize(
    ("origin", "forwarded_proto", "expected"),
    [
        ("https://api.test", "https", (200, True)),  # the app's own https page
        ("https://api.test", None, (200, True)),
        ("http://api.test", "https", (403, False)),  # an http page on the API's host
        ("http://api.test", None, (403, False)),
        ("https://api.test", "http", (403, False)),  # contradicted: in doubt
    ],
)
async def test_public_scheme_https(
    edge_factory: EdgeFactory,
    upstream: Upstream,
    origin: str,
    forwarded_proto: str | None,
    expected: tuple[int, bool],
) -> None:
    edge = edge_factory("public_scheme: https\n" + ROUTES)
    headers = {"Origin": origin}
    if forwarded_proto:
        headers["X-Forwarded-Proto"] = forwarded_proto
    assert await post(edge.url, upstream, headers) == expected


async def test_without_public_scheme_a_contradicting_forwarded_proto_means_cross_origin(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory(ROUTES)
    # Behind a terminator that is not trusted: an http page on the API's host used
    # to count as same-origin (cors-edge guessed http) and its POST reached Flask.
    contradicted = {"Origin": "http://api.test", "X-Forwarded-Proto": "https"}
    assert await post(edge.url, upstream, contradicted) == (403, False)
    # Nothing contradicts the guess: today's behaviour.
    assert await post(edge.url, upstream, {"Origin": "http://api.test"}) == (200, True)


async def test_a_trusted_forwarder_states_the_scheme(
    edge_factory: EdgeFactory, upstream: Upstream
) -> None:
    edge = edge_factory("trust_forwarded_from: [127.0.0.1/32]\n" + ROUTES)
    own_https = {"Origin": "https://api.test", "X-Forwarded-Proto": "https"}
    assert await post(edge.url, upstream, own_https) == (200, True)
    http_page = {"Origin": "http://api.test", "X-Forwarded-Proto": "https"}
    assert await post(edge.url, upstream, http_page) == (403, False)


def test_check_warns_when_same_origin_detection_rests_on_a_guess(tmp_path: Path) -> None:
    guessed = tmp_path / "guessed.yaml"
    guessed.write_text(ROUTES)
    stated = tmp_path / "stated.yaml"
    stated.write_text("public_scheme: https\n" + ROUTES)
    trusted = tmp_path / "trusted.yaml"
    trusted.write_text("trust_forwarded_from: [10.0.0.0/8]\n" + ROUTES)
    results = {
        path.name: subprocess.run(
            [sys.executable, "-m", "proxy", "check", "--config", str(path)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=30,
        )
        for path in (guessed, stated, trusted)
    }
    assert all(result.returncode == 0 for result in results.values())
    assert "guessed.yaml:2 public_scheme: warning: not set" in results["guessed.yaml"].stderr
    assert "public_scheme" not in results["stated.yaml"].stderr
    assert "public_scheme" not in results["trusted.yaml"].stderr


def test_the_shipped_kubernetes_policy_states_https() -> None:
    manifest = yaml.safe_load((REPO / "deploy" / "kubernetes" / "configmap.yaml").read_text())
    policies = load_policy_text(manifest["data"]["policies.yaml"], "configmap")
    assert policies.public_scheme == "https"
    assert not any("public_scheme" in warning for warning in policies.warnings)
