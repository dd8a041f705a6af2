"""The command line as users run it: `cors-edge check` and `cors-edge explain`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def test_check_accepts_the_shipped_policy() -> None:
    result = run("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("config/policies.yaml: OK, 3 routes")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "bad YAML",
            "routes:\n  - path: /a\n    origins: [http://a.test\n",
            r"bad\.yaml:4 \(yaml\): invalid YAML: ",
        ),
        (
            "unknown key",
            "routes:\n  - path: /a\n    origins: '*'\n    allow_origin: x\n",
            r"bad\.yaml:4 routes\[0\]\.allow_origin: unknown key",
        ),
        (
            "wildcard with credentials",
            "routes:\n  - path: /a\n    origins: '*'\n    supports_credentials: true\n",
            r"bad\.yaml:4 routes\[0\]\.supports_credentials: origins \"\*\" with "
            r"supports_credentials: true is refused",
        ),
        (
            "vary_header false",
            "routes:\n  - path: /a\n    origins: '*'\n    vary_header: false\n",
            r"bad\.yaml:4 routes\[0\]\.vary_header: cors-edge always sends Vary",
        ),
        (
            "bad regex",
            "routes:\n  - path: /a\n    origins:\n      - regex: '^https://(a\\.test$'\n",
            r"bad\.yaml:4 routes\[0\]\.origins\[0\]\.regex: invalid regular expression",
        ),
        (
            "bad origin",
            "routes:\n  - path: /a\n    origins:\n      - http://a.test\n      - a.test\n",
            r"bad\.yaml:5 routes\[0\]\.origins\[1\]: 'a\.test' is not an origin",
        ),
    ],
)
def test_check_refuses_with_file_line_key(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = run("check", "--config", str(path))
    assert result.returncode == 1, name
    assert re.match(re.escape(str(tmp_path)) + "/" + expected, result.stderr), result.stderr


def test_check_prints_lint_warnings_but_passes(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("routes:\n  - path: /api/*\n    origins: ['null']\n")
    result = run("check", "--config", str(path))
    assert result.returncode == 0
    assert "p.yaml:2 routes[0].path: warning:" in result.stderr
    assert "p.yaml:3 routes[0].origins[0]: warning:" in result.stderr


def test_config_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "env.yaml"
    path.write_text("routes: [{path: /x, origins: '*'}]\n")
    result = run("check", env={"CORS_EDGE_CONFIG": str(path)})
    assert result.returncode == 0 and str(path) in result.stdout


def test_explain_a_blocked_preflight() -> None:
    result = run(
        "explain",
        "--origin",
        "https://evil.test",
        "--method",
        "PUT",
        "--header",
        "Content-Type: application/json",
        "/api/items/1",
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "step 1, the browser's preflight:" in out
    assert "route:    routes[0] path /api/** (config/policies.yaml:" in out
    assert "decision: preflight_refused: origin https://evil.test is not allowed" in out
    assert "answer:   403 from cors-edge" in out
    assert "the actual request is never sent" in out


def test_explain_an_allowed_request_lists_exact_headers() -> None:
    result = run("explain", "--origin", "http://localhost:3000", "--method", "GET", "/api/items")
    out = result.stdout
    assert "no preflight" in out
    assert "decision: allowed" in out
    assert "    Access-Control-Allow-Origin: http://localhost:3000\n" in out
    assert "    Access-Control-Allow-Credentials: true\n" in out
    assert "    Vary: Origin\n" in out


def test_explain_an_unmatched_path() -> None:
    # The shipped policy is deny-by-default (unmatched: block) since issue 10: a
    # cross-origin request to a path no route covers is refused, not forwarded.
    result = run("explain", "--origin", "http://localhost:3000", "--method", "GET", "/admin/users")
    assert "route:    none" in result.stdout and "decision: blocked" in result.stdout
    assert "(unmatched: block)" in result.stdout and "warning:" not in result.stdout


def test_explain_says_when_legacy_code_runs_with_the_users_cookies(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("routes:\n  - {path: /legacy/**, origins: [http://a.test], enforce: false}\n")
    unmatched = run("explain", "--config", str(path), "--origin", "https://evil.test",
                    "--method", "POST", "/admin/users")  # fmt: skip
    assert "decision: no_route" in unmatched.stdout
    assert "warning:  this cross-origin request reaches Flask" in unmatched.stdout
    assert "user's cookies" in unmatched.stdout and "`unmatched: block`" in unmatched.stdout
    unenforced = run("explain", "--config", str(path), "--origin", "https://evil.test",
                     "--method", "POST", "/legacy/x")  # fmt: skip
    assert "decision: unenforced" in unenforced.stdout
    assert "`enforce: true` on routes[0] path /legacy/**" in unenforced.stdout
    same_origin = run("explain", "--config", str(path), "--origin", "http://cors-edge",
                      "--method", "POST", "/admin/users")  # fmt: skip
    assert "warning:" not in same_origin.stdout


def test_serve_refuses_a_bad_policy_file_with_its_location(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("routes:\n  - path: /a\n    origins: '*'\n    colour: red\n")
    result = run(
        "serve", "--config", str(path), "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"
    )
    assert result.returncode == 1
    assert f"{path}:4 routes[0].colour: unknown key" in result.stderr


def test_check_warns_for_origin_regexes_that_let_other_sites_in(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "public_scheme: https\nroutes:\n  - path: /api/**\n    origins:\n"
        "      - regex: ^https://app\\.example\\.com.*$\n"
        "      - regex: ^https://.*example\\.com$\n"
    )
    result = run("check", "--config", str(path))
    assert result.returncode == 0
    assert "p.yaml:5 routes[0].origins[0].regex: warning: ends in '.*'" in result.stderr
    assert "p.yaml:6 routes[0].origins[1].regex: warning: '.*' right before" in result.stderr
    assert "2 warnings" in result.stdout


def test_explain_judges_same_origin_with_the_stated_public_scheme(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("public_scheme: https\nroutes: [{path: /api/**, origins: [http://a.test]}]\n")
    own = run("explain", "--config", str(path), "--host", "api.test",
              "--origin", "https://api.test", "--method", "POST", "/api/x")  # fmt: skip
    assert "decision: same_origin" in own.stdout
    http_page = run("explain", "--config", str(path), "--host", "api.test",
                    "--origin", "http://api.test", "--method", "POST", "/api/x")  # fmt: skip
    assert "decision: blocked" in http_page.stdout
