"""`cors-edge import` on fixture apps, judged against Flask-CORS itself on the same apps.

Every expectation comes from running the fixture under Flask's test client with its
Flask-CORS configuration and applying the browser's check to the headers it sent. The
imported policy must agree on every case, except where the importer said it refuses
Flask-CORS's behaviour (and then only in the safe direction: cors-edge refuses).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.migrate.matrix import FIXTURES, Fixture, cases_yaml, compare
from tests.support import REPO

# What each fixture's imported policy refuses on purpose (see proxy/importer_fields.py),
# and the one non-safety difference: a method the view is not routed for (Flask's 405).
EXPECTED_DIFFERENCES = {
    "seed": {"regex-anchor"},
    "factory": {"wildcard-credentials"},
    "decorated_alone": {"405"},
    "unsafe": {"wildcard-credentials", "null", "regex-anchor"},
    "parity": {"regex-anchor"},
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_imported_policy_decides_every_case_as_flask_cors(name: str) -> None:
    all_cases, comparison, _ = compare(FIXTURES[name])
    verdicts = list(comparison.expected.values())
    assert any(verdicts) and not all(verdicts), "the matrix must hold both verdicts"
    assert not comparison.unexplained, "\n".join(comparison.unexplained)
    assert set(comparison.explained.values()) == EXPECTED_DIFFERENCES.get(name, set())
    assert len(all_cases) >= 300


def test_unsafe_cases_are_exactly_the_ones_refused() -> None:
    _, comparison, _ = compare(FIXTURES["unsafe"])
    explained = comparison.explained
    # "*" with credentials: Flask-CORS let any site read /api/me with the user's cookies.
    evil_me = "GET /api/me from http://evil.test headers=- creds"
    assert comparison.expected[evil_me] and not comparison.edge[evil_me]
    assert explained[evil_me] == "wildcard-credentials"
    # "null" listed: a sandboxed iframe of any site read /embed.
    null_embed = "GET /embed from null headers=-"
    assert comparison.expected[null_embed] and not comparison.edge[null_embed]
    # The start-anchored regex let a look-alike domain in; the real partner still passes.
    lookalike = "GET /partner/data from https://partner.example.evil.example headers=-"
    assert comparison.expected[lookalike] and explained[lookalike] == "regex-anchor"
    partner = "GET /partner/data from https://partner.example headers=-"
    assert comparison.expected[partner] and comparison.edge[partner]
    # Every difference is cors-edge refusing what Flask-CORS allowed, never the reverse.
    assert all(comparison.expected[n] and not comparison.edge[n] for n in explained)


def _import_and_test(fixture: Fixture, tmp_path: Path) -> tuple[Path, Path, int]:
    policy = tmp_path / f"{fixture.name}.yaml"
    imported = _cli("import", "--output", str(policy), *map(str, fixture.sources()))
    assert imported.returncode == 0, imported.stderr
    checked = _cli("check", "--config", str(policy))
    assert checked.returncode == 0, checked.stderr
    all_cases, comparison, result = compare(fixture)
    assert policy.read_text() == result.text
    expected = dict(comparison.expected)
    expected.update({name: comparison.edge[name] for name in comparison.explained})
    cases = tmp_path / "cases.yaml"
    cases.write_text(cases_yaml(all_cases, expected))
    return policy, cases, len(all_cases)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_cors_edge_test_cli_agrees_with_flask_cors(name: str, tmp_path: Path) -> None:
    policy, cases, count = _import_and_test(FIXTURES[name], tmp_path)
    ran = _cli("test", "--config", str(policy), str(cases))
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr
    assert ran.stdout.splitlines()[-1] == f"{count} passed, 0 failed"
    assert len(ran.stdout.splitlines()) == count + 1


def test_cors_edge_test_cli_fails_on_one_flipped_expectation(tmp_path: Path) -> None:
    policy, cases, count = _import_and_test(FIXTURES["seed"], tmp_path)
    text = cases.read_text()
    target = "name: PUT /api/items from http://localhost:3000 headers=Content-Type creds\n"
    head, _, tail = text.partition(target)
    assert tail, "the case to flip is in the matrix"
    flipped_tail = tail.replace("expect: allowed", "expect: refused", 1)
    assert flipped_tail != tail
    cases.write_text(head + target + flipped_tail)
    ran = _cli("test", "--config", str(policy), str(cases))
    assert ran.returncode == 1
    assert ran.stdout.splitlines()[-1] == f"{count - 1} passed, 1 failed"
    failed = [line for line in ran.stdout.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1
    assert "PUT /api/items from http://localhost:3000 headers=Content-Type creds" in failed[0]
    assert "expected refused, got allowed" in failed[0]
