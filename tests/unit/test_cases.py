"""proxy/cases.py: policy expectations decided by the engine, judged by the browser's check."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest

from proxy.cases import parse_cases, run_case, run_cases
from proxy.drafts import PolicyError
from proxy.loader import load_policy_text

POLICY = """
defaults:
  methods: [GET, HEAD, POST]
  allow_headers: [Content-Type]
routes:
  - path: /api/**
    origins: [http://localhost:3000]
    methods: [GET, POST, PUT]
    allow_headers: [Content-Type, Authorization]
    supports_credentials: true
  - path: /public/**
    origins: "*"
"""


def _case(text: str) -> object:
    [case] = parse_cases(textwrap.dedent(text), "cases.yaml")
    return case


def _run(text: str) -> tuple[bool, bool]:
    config = load_policy_text(POLICY)
    [case] = parse_cases(textwrap.dedent(text), "cases.yaml")
    outcome = run_case(config, case)
    return outcome.allowed, outcome.reaches_upstream


def test_a_preflighted_credentialed_put_is_allowed() -> None:
    assert _run("""
        - origin: http://localhost:3000
          method: PUT
          path: /api/items/1
          headers: [Content-Type, Authorization]
          credentials: true
          expect: allowed
    """) == (True, True)


def test_a_refused_origin_is_blocked_before_the_upstream() -> None:
    assert _run("""
        - {origin: http://evil.test, method: POST, path: /api/x, expect: refused}
    """) == (False, False)


def test_wildcard_with_credentials_is_refused_by_the_browser() -> None:
    allowed, reached = _run("""
        - {origin: http://a.test, method: GET, path: /public/x, credentials: true, expect: refused}
    """)
    assert (allowed, reached) == (False, True)
    assert _run("- {origin: http://a.test, method: GET, path: /public/x, expect: allowed}") == (
        True,
        True,
    )


def test_a_header_value_can_make_a_request_simple() -> None:
    # Accept is CORS-safelisted (no preflight); X-Trace needs a preflight /public refuses.
    simple = """
        - {origin: http://a.test, method: POST, path: /public/x,
           headers: ["Accept: text/plain", "X-Trace"], expect: allowed}
    """
    assert not _run(simple)[0]
    assert _run(simple.replace(', "X-Trace"', ""))[0]


def test_no_route_means_no_cors_headers_once_flask_cors_is_gone() -> None:
    assert _run("- {origin: http://localhost:3000, method: GET, path: /x, expect: refused}") == (
        False,
        True,
    )


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("- {origin: a, method: GET, path: /x, expect: maybe}\n", "cases.yaml:1 [0].expect"),
        ("- {origin: a, method: GET, expect: allowed}\n", "cases.yaml:1 [0].path"),
        ("- origin: a\n  method: GET\n  path: /x\n  expect: allowed\n  colour: red\n",
         "cases.yaml:5 [0].colour"),
        ("- {origin: a, method: GET, path: x, expect: allowed}\n", "cases.yaml:1 [0].path"),
        ("- {origin: a, method: GET, path: /x, expect: allowed, credentials: 1}\n",
         "cases.yaml:1 [0].credentials"),
        ("origin: a\n", "cases.yaml:1 (document)"),
        ("- [unclosed\n", "cases.yaml:2 (yaml)"),
    ],
)  # fmt: skip
def test_a_bad_cases_file_names_file_line_and_key(text: str, where: str) -> None:
    with pytest.raises(PolicyError) as error:
        parse_cases(text, "cases.yaml")
    assert str(error.value).startswith(where + ":"), str(error.value)


def test_run_cases_prints_one_line_per_case_and_a_summary(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        textwrap.dedent("""
        - name: the SPA reads items
          origin: http://localhost:3000
          method: GET
          path: /api/items
          expect: allowed
          reaches_upstream: true
        - name: evil posts
          origin: http://evil.test
          method: POST
          path: /api/items
          expect: allowed
        - name: evil never reaches Flask
          origin: http://evil.test
          method: POST
          path: /api/items
          expect: refused
          reaches_upstream: true
    """)
    )
    out, err = io.StringIO(), io.StringIO()
    assert run_cases(str(policy), str(cases), out, err) == 1
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("ok   ") and "the SPA reads items: allowed" in lines[0]
    assert lines[1].startswith(f"FAIL {cases}:8 evil posts: expected allowed, got refused")
    assert lines[2].startswith("FAIL") and "does not reach the upstream" in lines[2]
    assert lines[3] == "1 passed, 2 failed"
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {origin: a, method: GET, path: /x, expect: nope}\n")
    assert run_cases(str(policy), str(bad), io.StringIO(), err) == 2
    assert f"{bad}:1 [0].expect:" in err.getvalue()


def test_on_a_shadow_route_a_refused_request_still_reaches_the_upstream() -> None:
    config = load_policy_text(POLICY.replace("defaults:\n", "defaults:\n  enforce: shadow\n"))
    [case] = parse_cases(
        "- {origin: http://evil.test, method: POST, path: /api/x, expect: refused}\n", "c.yaml"
    )
    outcome = run_case(config, case)
    assert (outcome.allowed, outcome.reaches_upstream) == (False, True)


def test_unmatched_block_refuses_paths_no_route_matches() -> None:
    config = load_policy_text("unmatched: block\n" + POLICY)
    [case] = parse_cases(
        "- {origin: http://localhost:3000, method: GET, path: /x, expect: refused}\n", "c.yaml"
    )
    assert run_case(config, case).reaches_upstream is False


def test_a_refused_origin_names_the_nearest_allowed_one(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- {origin: https://localhost:3000, method: GET, path: /api/x, expect: allowed}\n"
    )
    out = io.StringIO()
    assert run_cases(str(policy), str(cases), out, io.StringIO()) == 1
    assert "nearest allowed origin: http://localhost:3000; differs in" in out.getvalue()


def test_a_fragment_in_a_case_path_stays_in_the_browser() -> None:
    # fetch("/api/items#top") sends /api/items: the case is that request, never a 400.
    assert _run("""
        - {origin: http://localhost:3000, method: GET, path: "/api/items#top", expect: allowed}
    """) == (True, True)
