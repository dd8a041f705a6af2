"""DESIGN.md "Local development in one line", end to end: `serve --allow-origin` reads
no policy file and allows the listed origins every method and requested header."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from tests.e2e.http import fetch
from tests.support import REPO, Upstream, start_edge

APP = "http://localhost:3000"
OTHER = "https://a.test"


async def test_allow_origin_serves_without_a_policy_file(
    tmp_path: Path, upstream: Upstream
) -> None:
    absent = tmp_path / "no-such-policy.yaml"  # never read
    edge = start_edge(absent, upstream.url, "--allow-origin", APP, "--allow-origin", OTHER,
                      "--allow-credentials", "--no-access-log")  # fmt: skip
    try:
        startup = edge.stderr.wait_for(r"listening on .*")[0]
        assert f"policy --allow-origin {APP} {OTHER} (no policy file: one route /** " in startup
        assert "every method and requested header, with credentials)" in startup
        preflight = await fetch(
            "OPTIONS",
            edge.url + "/api/items/1",
            {
                "Origin": APP,
                "Access-Control-Request-Method": "PATCH",
                "Access-Control-Request-Headers": "x-anything, authorization",
            },
        )
        assert preflight.status == 204
        assert preflight.cors() == {
            "Access-Control-Allow-Origin": APP,
            "Access-Control-Allow-Methods": "PATCH",
            "Access-Control-Allow-Headers": "x-anything, authorization",
            "Access-Control-Max-Age": "600",
            "Access-Control-Allow-Credentials": "true",
        }
        allowed = await fetch("GET", edge.url + "/api/items", {"Origin": OTHER})
        assert allowed.status == 200
        assert allowed.headers["Access-Control-Allow-Origin"] == OTHER
        assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
        refused = await fetch(
            "OPTIONS",
            edge.url + "/api/items",
            {"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
        )
        assert refused.status == 403 and refused.cors() == {}
        blocked = await fetch("POST", edge.url + "/api/items", {"Origin": "https://evil.test"})
        assert blocked.status == 403
        assert (await fetch("GET", edge.url + "/api/items")).status == 200
        # SIGHUP: there is no file to re-read; the flag-built policy stays.
        edge.signal(signal.SIGHUP)
        edge.stderr.wait_for(r"no policy file to re-read \(the policy comes from --allow-origin\)")
        edge.stderr.wait_for(r"reload \(SIGHUP\): unchanged, keeping generation 1")
        again = await fetch("GET", edge.url + "/api/items", {"Origin": APP})
        assert again.headers["Access-Control-Allow-Origin"] == APP
        assert not absent.exists()
        edge.signal(signal.SIGTERM)
        assert edge.wait_exit(30) == 0
    finally:
        edge.stop()


async def test_without_credentials_none_are_allowed(tmp_path: Path, upstream: Upstream) -> None:
    edge = start_edge(tmp_path / "absent.yaml", upstream.url, "--allow-origin", APP)
    try:
        assert "without credentials" in edge.stderr.wait_for(r"listening on .*")[0]
        answer = await fetch("GET", edge.url + "/api/items", {"Origin": APP})
        assert answer.headers["Access-Control-Allow-Origin"] == APP
        assert "Access-Control-Allow-Credentials" not in answer.headers
    finally:
        edge.stop()


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "serve", "--listen", "127.0.0.1:0", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_bad_local_dev_flags_are_refused_before_listening() -> None:
    bad_origin = serve("--allow-origin", "localhost:3000")
    assert bad_origin.returncode == 2
    assert "cors-edge: --allow-origin: 'localhost:3000' is not an origin" in bad_origin.stderr
    star = serve("--allow-origin", "*", "--allow-credentials")
    assert star.returncode == 2 and 'origins "*" with supports_credentials' in star.stderr
    watch = serve("--allow-origin", APP, "--watch")
    assert watch.returncode == 2 and "--watch needs a policy file" in watch.stderr
    lone = serve("--allow-credentials")
    assert lone.returncode == 2 and "--allow-credentials needs --allow-origin" in lone.stderr
