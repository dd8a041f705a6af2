"""docs/flask-cors-parity.md is what the matrix observes now, and cors-edge's verdicts hold.

Regenerate the document with ``.venv/bin/python -m tests.parity.generate``.
"""

from __future__ import annotations

import difflib

import pytest

from tests.parity.matrix import CASES, DOC, Result, render, run_matrix


@pytest.fixture(scope="module")
def results() -> list[Result]:
    return run_matrix()


def test_matrix_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


def test_cors_edge_verdicts_are_the_expected_ones(results: list[Result]) -> None:
    wrong = [
        f"{result.case.id}: expected {result.case.expect}, cors-edge gave {result.edge.verdict}"
        for result in results
        if result.edge.verdict != result.case.expect
    ]
    assert not wrong, "\n".join(wrong)


def test_parity_document_matches_what_is_observed(results: list[Result]) -> None:
    observed = render(results)  # also fails on any unexplained difference
    recorded = DOC.read_text()
    diff = "".join(
        difflib.unified_diff(
            recorded.splitlines(keepends=True),
            observed.splitlines(keepends=True),
            "docs/flask-cors-parity.md",
            "observed now",
        )
    )
    assert observed == recorded, (
        "docs/flask-cors-parity.md is stale; run `.venv/bin/python -m tests.parity.generate` "
        "and review the change:\n" + diff
    )
