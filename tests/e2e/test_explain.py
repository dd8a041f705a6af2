"""`cors-edge explain` and the browser: the browser's own check on cors-edge's answer.

The routing and decision lines are tested in test_cli.py; here, what proxy/explain.py
adds from proxy/browser.py and proxy/nearmiss.py, on the shipped policy.
"""

from __future__ import annotations

from tests.e2e.test_cli import run


def test_explain_names_the_near_miss_of_a_refused_origin() -> None:
    result = run("explain", "--origin", "http://localhost:3001", "--method", "GET", "/api/items")
    assert result.returncode == 0, result.stderr
    assert (
        "  hint:     nearest allowed origin: http://localhost:3000; differs in port: 3001,"
        " allowed 3000\n" in result.stdout
    )
    assert "=> blocked: No 'Access-Control-Allow-Origin' header is present" in result.stdout


def test_explain_applies_the_browsers_check_with_credentials() -> None:
    # cors-edge stamps `*` on /public/**: fine without credentials, refused with them.
    plain = run("explain", "--origin", "http://localhost:3000", "--method", "GET", "/public/a")
    assert "=> the page can read the response" in plain.stdout
    assert "hint:" not in plain.stdout
    creds = run(
        "explain", "--origin", "http://localhost:3000", "--method", "GET", "--credentials",
        "/public/a",
    )  # fmt: skip
    assert "=> blocked: The value of the 'Access-Control-Allow-Origin' header in the" in (
        creds.stdout
    )


def test_explain_prints_the_browsers_preflight_headers() -> None:
    result = run(
        "explain", "--origin", "http://localhost:3000", "--method", "put",
        "--header", "X-B: 1", "--header", "Content-Type: application/json", "/api/items/1",
    )  # fmt: skip
    out = result.stdout
    assert "  Access-Control-Request-Method: PUT\n" in out
    assert "  Access-Control-Request-Headers: content-type,x-b\n" in out
    assert "decision: preflight_refused: header x-b is not in routes[0]" in out
    # cors-edge refuses with a bare 403, so the browser's words are about the missing header
    assert (
        "=> blocked: Response to preflight request doesn't pass access control check: No"
        " 'Access-Control-Allow-Origin' header is present on the requested resource.\n" in out
    )


def test_explain_takes_a_fragment_as_fetch_does() -> None:
    # The browser never sends "#top": the request is /api/items, not a refused raw path.
    result = run(
        "explain", "--origin", "http://localhost:3000", "--method", "GET", "/api/items#top"
    )
    assert result.returncode == 0, result.stderr
    assert "routed as /api/items\n" in result.stdout
    assert "=> the page can read the response" in result.stdout
